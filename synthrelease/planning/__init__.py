"""Planning a release before any row is read: public choices and predictions.

``choices``: the generator, bins and threshold rules of a drafted spec;
``standin`` and ``simulate``: the spec's generator fitted on a public stand-in table;
``plan``: what a spec's release will look like (budget lines, noise scales, expected
marginal errors, whether the gate's utility checks are likely to pass), from the spec
and a public row count only.
"""

from __future__ import annotations

from typing import Any

from synthrelease.planning.choices import choose_generator, round_rows, suggest_bins
from synthrelease.planning.plan import Plan, gate_for_plan, make_plan, workspace_plans
from synthrelease.spec import ReleaseSpec


def gate_for_draft(spec: ReleaseSpec, *, rows: int | None) -> dict[str, Any]:
    """Utility thresholds for a drafted spec from its plan (``gate_for_plan``); none
    without a row count (the draft then keeps the defaults)."""
    if rows is None and spec.expected_rows is None:
        return {}
    plan = make_plan(spec, rows=rows, cache=workspace_plans(spec))
    return gate_for_plan(spec, plan)


__all__ = [
    "Plan",
    "choose_generator",
    "gate_for_draft",
    "gate_for_plan",
    "make_plan",
    "round_rows",
    "suggest_bins",
    "workspace_plans",
]
