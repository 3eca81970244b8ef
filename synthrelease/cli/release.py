"""``synthrelease run`` and ``synthrelease spec draft|check``.

Prefect is imported only when a run goes through a flow (it takes seconds to import).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from synthrelease import run
from synthrelease.cli.output import _out
from synthrelease.cli.plan import plan_before_run
from synthrelease.errors import (
    SpecError,
    SynthReleaseError,
)
from synthrelease.flows.api import prefect_api, server_answers
from synthrelease.pipeline import ReleaseSummary, preflight
from synthrelease.pipeline.executors import DASK_ADDRESS
from synthrelease.private.draft import draft_spec
from synthrelease.spec import load_spec

logger = logging.getLogger("synthrelease.cli")


LOCAL_DASK = "local"  # ``--dask`` without an address: a local cluster for the checks


def cmd_run(args: argparse.Namespace) -> int:
    if args.dask == LOCAL_DASK and args.engine == "direct":
        raise SpecError("--dask runs the Prefect flow 'release-dask': leave out --engine direct")
    if args.dask not in (None, LOCAL_DASK):  # the train step reads its shards there
        os.environ[DASK_ADDRESS] = args.dask
    spec = load_spec(args.spec)
    plan_before_run(spec, anyway=args.anyway)  # public: reads no row
    if args.engine == "direct":  # run.release reads, pins and preflights the spec itself
        return _report(run.release(str(Path(args.spec).resolve())))
    preflight(spec)  # fail fast, before Prefect starts
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not args.debug:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    configured = server_answers()
    # Prefect reads its settings when imported: the flows are imported only now, after
    # the environment above is set (and only by the commands that run a flow).
    if args.dask:
        from synthrelease.flows.release_dask import release_dask as release
        from synthrelease.flows.release_many import dask_runner

        if args.dask != LOCAL_DASK:
            runner = dask_runner(address=args.dask)
            release = release.with_options(task_runner=runner)  # type: ignore[arg-type]  # prefect-dask's runner is generic over its own future type
    else:
        from synthrelease.flows.release import release
    logger.info("starting flow %r", release.name, extra={"spec": args.spec})
    with prefect_api(configured=configured):
        state = release(str(Path(args.spec).resolve()), return_state=True)
    if state.is_completed():
        return _report(state.result())
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException):
        raise exc
    raise SynthReleaseError(f"flow {release.name!r} ended {state.type.value}")


def _report(summary: ReleaseSummary) -> int:
    _out(f"release {summary.release_id} published")
    _out(f"epsilon spent: {summary.epsilon:g} (delta {summary.delta:g})")
    _out("gate: passed")
    return 0


def cmd_spec_draft(args: argparse.Namespace) -> int:
    out = Path(args.output)
    raw = draft_spec(
        Path(args.data),
        name=args.name,
        output=out,
        target=args.target,
        k=args.k,
        rows=args.rows,
        delta=args.delta,
        expected_rows=args.expected_rows,
        dp=args.dp,
        dp_delta=args.dp_delta,
        workspace=Path(args.workspace),
        budget_epsilon=args.budget_epsilon,
        budget_delta=args.budget_delta,
        seed=args.seed,
    )
    if args.dp is None:
        _out(
            f"wrote {out}: its bounds and category sets were read from the rows WITHOUT DP "
            "(provenance: drafted; releases say so); review them: they become public"
        )
    else:
        est = raw["provenance"]["domain_estimate"]
        _out(
            f"wrote {out}: bounds and category sets estimated under ({est['epsilon']:g}, "
            f"{est['delta']:g})-DP, charged to table {args.name!r} as {est['run_id']}; "
            "review them: they become public"
        )
    gen = raw["generator"]
    _out(
        f"generator {gen['name']} with {gen['params']['bins']} bins, chosen for "
        f"{raw['expected_rows']} expected rows ({raw['provenance']['expected_rows']}); "
        "the spec's header comment says how"
    )
    return 0


def cmd_spec_check(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    _out(
        f"{args.spec}: valid spec for {spec.name!r} ({len(spec.columns)} columns, "
        f"generator {spec.generator.name}, epsilon {spec.privacy.epsilon:g})"
    )
    return 0
