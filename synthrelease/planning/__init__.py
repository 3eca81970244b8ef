"""Planning a release before any row is read: public choices and predictions.

``choices``: the generator, bins and threshold rules of a drafted spec;
``standin`` and ``simulate``: the spec's generator fitted on a public stand-in table;
``plan``: what a spec's release will look like (budget lines, noise scales, expected
marginal errors, whether the gate's utility checks are likely to pass), from the spec
and a public row count only;
``shapes``: the table's 1-way shapes measured under DP (charged) for the stand-in.
"""

from __future__ import annotations

from typing import Any

from synthrelease.planning.choices import choose_generator, round_rows, suggest_bins
from synthrelease.planning.plan import Plan, gate_for_plan, make_plan, workspace_plans
from synthrelease.planning.shapes import Shapes, load_shapes, measure
from synthrelease.spec import ReleaseSpec


def gate_for_draft(spec: ReleaseSpec, *, rows: int | None) -> dict[str, Any]:
    """Utility thresholds for a drafted spec from its plan (``gate_for_plan``); none
    without a row count (the draft then keeps the defaults)."""
    if rows is None and spec.expected_rows is None:
        return {}
    plan = make_plan(spec, rows=rows, cache=workspace_plans(spec), shapes=load_shapes(spec))
    return gate_for_plan(spec, plan)


__all__ = [
    "Plan",
    "Shapes",
    "choose_generator",
    "gate_for_draft",
    "gate_for_plan",
    "load_shapes",
    "make_plan",
    "measure",
    "round_rows",
    "suggest_bins",
    "workspace_plans",
]
