"""``synthrelease plan SPEC``, and the plan ``run`` prints (and enforces) before it spends.

Everything here is public: the plan is computed from the spec and a public row count
(see :mod:`synthrelease.planning.plan`); no row is read and nothing is charged, except
with ``plan --measure EPSILON``, which charges the table's ledger, then measures its 1-way
shapes under DP (:mod:`synthrelease.planning.shapes`); every later plan of the same
domain uses that measurement.
"""

from __future__ import annotations

import argparse
import json
import sys

from synthrelease.cli.output import _out
from synthrelease.errors import PlanRefusedError, SpecError
from synthrelease.planning import make_plan, workspace_plans
from synthrelease.planning.plan import check_rows
from synthrelease.planning.shapes import load_shapes, measure
from synthrelease.spec import ReleaseSpec, load_spec


def cmd_plan(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    orphans = args.seed is not None or args.measure_delta is not None or args.again
    if args.measure is None and orphans:
        raise SpecError("--seed, --measure-delta and --again go with --measure EPSILON")
    if args.rows is not None:
        check_rows(args.rows)  # before --measure charges anything
    shapes = load_shapes(spec)
    if args.measure is not None:
        if shapes is not None and not args.again:
            raise SpecError(
                f"'{spec.name}' was measured already for this domain (ledger run "
                f"{shapes.run_id}); later plans use that. --again buys a fresh measurement"
            )
        shapes = measure(spec, epsilon=args.measure, delta=args.measure_delta, seed=args.seed)
        line = (
            f"plan: charged epsilon {shapes.epsilon:g}, delta {shapes.delta:g} to "
            f"'{spec.name}' (ledger run {shapes.run_id}) for its 1-way shapes under DP"
        )
        if args.json:  # stdout stays one JSON document
            sys.stderr.write(line + "\n")
        else:
            _out(line)
    plan = make_plan(
        spec,
        rows=args.rows,
        holdout_rows=args.holdout_rows,
        cache=None if args.fresh else workspace_plans(spec),
        shapes=shapes,
    )
    _out(json.dumps(plan.to_dict(), indent=2) if args.json else plan.render())
    return 0


def plan_before_run(spec: ReleaseSpec, *, anyway: bool) -> None:
    """Print the plan's one-line summary before a run spends; refuse (exit 2, nothing
    read or charged) when the plan says the gate cannot pass, unless ``anyway``. A spec
    without ``expected_rows`` (and no measurement by ``plan --measure``) has no plan:
    said so, and the run goes on."""
    shapes = load_shapes(spec)
    if spec.expected_rows is None and shapes is None:
        _out("plan: none (declare expected_rows in the spec to see one before spending)")
        return
    plan = make_plan(spec, cache=workspace_plans(spec), shapes=shapes)
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
