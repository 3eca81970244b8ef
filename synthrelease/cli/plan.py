"""``synthrelease plan SPEC``, and the plan ``run`` prints (and enforces) before it spends.

Everything here is public: the plan is computed from the spec and a public row count
(see :mod:`synthrelease.planning.plan`); no row is read and nothing is charged.
"""

from __future__ import annotations

import argparse
import json

from synthrelease.cli.output import _out
from synthrelease.errors import PlanRefusedError
from synthrelease.planning import make_plan, workspace_plans
from synthrelease.spec import ReleaseSpec, load_spec


def cmd_plan(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    plan = make_plan(
        spec,
        rows=args.rows,
        holdout_rows=args.holdout_rows,
        cache=None if args.fresh else workspace_plans(spec),
    )
    _out(json.dumps(plan.to_dict(), indent=2) if args.json else plan.render())
    return 0


def plan_before_run(spec: ReleaseSpec, *, anyway: bool) -> None:
    """Print the plan's one-line summary before a run spends; refuse (exit 2, nothing
    read or charged) when the plan says the gate cannot pass, unless ``anyway``. A spec
    without ``expected_rows`` has no plan: said so, and the run goes on."""
    if spec.expected_rows is None:
        _out("plan: none (declare expected_rows in the spec to see one before spending)")
        return
    plan = make_plan(spec, cache=workspace_plans(spec))
    _out(plan.summary_line())
    if plan.gate_can_pass:
        return
    if anyway:
        _out("plan: running anyway (--anyway)")
        return
    raise PlanRefusedError(
        f"the plan of '{spec.name}' says its gate cannot be expected to pass; nothing was "
        "read or charged. See `synthrelease plan SPEC` for the remedies, or run with --anyway"
    )
