"""The ``synthrelease`` command line.

Errors end as one line ``error: ...`` on stderr and a non-zero exit code; a traceback
only with ``--debug``. Messages of unexpected exceptions are not printed (a library's
message can quote data); their type is. Heavy libraries are imported per command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from synthrelease import log as slog
from synthrelease.errors import GateFailedError, SpecError, SynthReleaseError

DEFAULT_STORE_ENV = "SYNTHRELEASE_STORE"
logger = logging.getLogger("synthrelease.cli")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def default_store() -> str:
    return os.environ.get(DEFAULT_STORE_ENV, "releases")


# ---------------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace) -> int:
    from synthrelease import pipeline
    from synthrelease.spec import load_spec

    spec = load_spec(args.spec)
    pipeline.preflight(spec)  # fail fast, before Prefect starts
    if args.dask and args.engine == "direct":
        raise SpecError("--dask runs the Prefect flow 'release-dask': leave out --engine direct")
    if args.engine == "direct":
        from synthrelease.run import run_release

        return _report(run_release(str(Path(args.spec).resolve())))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not args.debug:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from synthrelease.flows.api import prefect_api, server_answers

    configured = server_answers()

    if args.dask:
        from synthrelease.flows.release_dask import release_dask as release
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


def _report(summary: dict) -> int:
    _out(f"release {summary['release_id']} published")
    _out(f"epsilon spent: {summary['epsilon']:g} (delta {summary['delta']:g})")
    _out("gate: passed")
    return 0


def cmd_spec_draft(args: argparse.Namespace) -> int:
    from synthrelease.private.draft import draft_spec

    out = Path(args.output)
    raw = draft_spec(
        Path(args.data), name=args.name, output=out, target=args.target, k=args.k,
        rows=args.rows, delta=args.delta, dp=args.dp, dp_delta=args.dp_delta,
        workspace=Path(args.workspace), budget_epsilon=args.budget_epsilon,
        budget_delta=args.budget_delta, seed=args.seed,
    )
    if args.dp is None:
        _out(f"wrote {out}: its bounds and category sets were read from the rows WITHOUT DP "
             "(provenance: drafted; releases say so); review them: they become public")
    else:
        est = raw["provenance"]["domain_estimate"]
        _out(f"wrote {out}: bounds and category sets estimated under ({est['epsilon']:g}, "
             f"{est['delta']:g})-DP, charged to table {args.name!r} as {est['run_id']}; "
             "review them: they become public")
    return 0


def cmd_spec_check(args: argparse.Namespace) -> int:
    from synthrelease.spec import load_spec

    spec = load_spec(args.spec)
    _out(f"{args.spec}: valid spec for {spec.name!r} ({len(spec.columns)} columns, "
         f"generator {spec.generator.name}, epsilon {spec.privacy.epsilon:g})")
    return 0


def _ledger(args: argparse.Namespace):
    from synthrelease.ledger import BudgetLedger
    from synthrelease.pipeline import open_ledger
    from synthrelease.private.workspace import Workspace
    from synthrelease.spec import load_spec

    if args.spec:
        return open_ledger(load_spec(args.spec))
    return BudgetLedger.sqlite(Workspace(Path(args.workspace)).ensure().ledger_path)


def cmd_budget_show(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        rows = ledger.summary()
        if args.entries:
            entries, changes = ledger.entries(), ledger.budget_changes()
            if not args.private:
                entries = [dataclasses.replace(e, private_reason=None) for e in entries]
            if args.json:
                _out(json.dumps({"entries": [e.__dict__ for e in entries],
                                 "budget_changes": [c.__dict__ for c in changes]},
                                indent=2, default=str))
                return 0
            _out(f"{'table':<20}{'run':<28}{'epsilon':>9}{'delta':>10}  {'status':<10} reason")
            for e in entries:
                private = f" [{e.private_reason}]" if args.private and e.private_reason else ""
                _out(f"{e.dataset:<20}{e.run_id:<28}{e.epsilon:>9.4g}{e.delta:>10.3g}  "
                     f"{e.status:<10} {e.reason or ''}{private}")
            if changes:
                _out("")
                _out(f"{'table':<20}{'budget set at':<28}{'epsilon':>9}{'delta':>10}  reason")
                for c in changes:
                    _out(f"{c.dataset:<20}{c.created_at:%Y-%m-%dT%H:%M:%S}{'':<9}"
                         f"{c.epsilon:>9.4g}{c.delta:>10.3g}  {c.reason} (by {c.by})")
            return 0
        if args.json:
            _out(json.dumps([r.__dict__ for r in rows], indent=2))
            return 0
        if not rows:
            _out("no spends recorded")
            return 0
        _out(f"{'table':<24}{'epsilon':>10}{'delta':>11}{'budget eps':>12}{'budget delta':>14}"
             f"{'runs ok':>9}{'spent':>7}{'open':>6}{'void':>6}")
        for r in rows:
            _out(f"{r.dataset:<24}{r.epsilon:>10.4g}{r.delta:>11.3g}{r.budget_epsilon:>12.4g}"
                 f"{r.budget_delta:>14.3g}{r.committed:>9}{r.spent:>7}{r.reserved:>6}{r.voided:>6}")
        return 0


def cmd_budget_set(args: argparse.Namespace) -> int:
    """The custodian's explicit, recorded change of a table's lifetime budget."""
    from pydantic import ValidationError

    with _ledger(args) as ledger:
        try:
            ledger.set_budget(args.name, epsilon=args.epsilon, delta=args.delta,
                              reason=args.reason)
        except ValidationError:
            raise SpecError("budget set: --epsilon must be > 0 and --delta in [0, 1)") from None
        spent_eps, spent_delta = ledger.spent(args.name)
    _out(f"lifetime budget of {args.name!r} set to epsilon {args.epsilon:g}, delta "
         f"{args.delta:g} (recorded; spent so far: epsilon {spent_eps:.4g}, delta "
         f"{spent_delta:.3g}). Specs of this table must now state this budget.")
    return 0


def cmd_releases_list(args: argparse.Namespace) -> int:
    from synthrelease.store import ReleaseStore

    rows = ReleaseStore(args.store).releases()
    if args.json:
        _out(json.dumps([r.__dict__ for r in rows], indent=2, default=list))
        return 0
    if not rows:
        _out(f"no releases in {args.store}")
        return 0
    _out(f"{'release':<44}{'epsilon':>9}{'delta':>10}{'rows':>9}  {'generator':<9}  models  created")
    for r in rows:
        mark = " (latest)" if r.latest else " (withdrawn)" if r.withdrawn else ""
        rid = f"{r.dataset}@{r.version}{mark}"
        _out(f"{rid:<44}{r.epsilon:>9g}{r.delta:>10.2g}{r.rows:>9}  {r.generator:<9}  "
             f"{len(r.models):>6}  {r.created}")
    return 0


def _datasheets(store, name: str, manifest: dict) -> list[tuple[str, str]]:
    rels = [r for r in manifest.get("files", {})
            if r.rsplit("/", 1)[-1].lower().startswith("datasheet")]
    rels = [r for r in rels if r.endswith(".md")] or rels  # the readable form, if there is one
    return [(r, store.read_verified(name, manifest["version"], r).decode("utf-8", "replace"))
            for r in sorted(rels)]


def cmd_releases_show(args: argparse.Namespace) -> int:
    from synthrelease.store import ReleaseStore, parse_ref

    name, version = parse_ref(args.ref)
    store = ReleaseStore(args.store)
    manifest = store.manifest(name, version)
    _out(json.dumps(manifest, indent=2))
    if args.json:
        return 0
    withdrawn = store.withdrawn(name).get(manifest["version"])
    if withdrawn:
        _out(f"status: withdrawn on {withdrawn.get('at')}: {withdrawn.get('reason')}")
    else:
        latest = store.latest(name)
        _out(f"status: {'latest' if latest == manifest['version'] else f'superseded by {latest}'}")
    for rel, text in _datasheets(store, name, manifest):
        _out(f"\n--- {rel} (sha256 verified) ---")
        _out(text.rstrip())
    return 0


def cmd_releases_verify(args: argparse.Namespace) -> int:
    from synthrelease.store import ReleaseStore, parse_ref

    name, version = parse_ref(args.ref)
    store = ReleaseStore(args.store)
    files = store.verify(name, version)
    _out(f"{args.ref}: {len(files)} files match their manifest hashes")
    resolved = store.resolve(name, version)
    if resolved in store.withdrawn(name):
        sys.stderr.write(f"note: {name}@{resolved} is withdrawn\n")
    return 0


def cmd_releases_withdraw(args: argparse.Namespace) -> int:
    from synthrelease.errors import StoreError
    from synthrelease.store import ReleaseStore, parse_ref

    name, version = parse_ref(args.ref)
    if version == "latest":
        raise StoreError("withdraw needs an explicit version: NAME@VERSION")
    store = ReleaseStore(args.store)
    event = store.withdraw(name, version, reason=args.reason, purge=args.purge)
    latest = store.latest(name)
    _out(f"withdrew {name}@{version}" + (" and deleted its files" if event["purged"] else "")
         + f"; latest is now {latest or 'none'}")
    return 0


def cmd_releases_history(args: argparse.Namespace) -> int:
    from synthrelease.store import ReleaseStore, parse_ref

    name, _ = parse_ref(args.name)
    events = ReleaseStore(args.store).history(name)
    if not events:
        _out(f"no withdrawals or expiries recorded for {name!r}")
    for e in events:
        _out(f"{e.get('at')}  {e.get('event'):<10} {name}@{e.get('version')}  {e.get('reason')}"
             + ("  (files deleted)" if e.get("purged") else ""))
    return 0


def cmd_releases_catalog(args: argparse.Namespace) -> int:
    from synthrelease.catalog import write_catalog
    from synthrelease.store import ReleaseStore

    _out(f"wrote {write_catalog(ReleaseStore(args.store))}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from synthrelease.store import ReleaseStore, parse_ref

    name, version = parse_ref(args.ref)
    out = ReleaseStore(args.store).pull(name, version, Path(args.output),
                                        allow_withdrawn=args.allow_withdrawn)
    _out(f"pulled {name}@{out.name} into {out} (hashes verified)")
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synthrelease",
        description="Release differentially private synthetic data from sensitive tables.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and Prefect logs")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a release (Prefect flow, no server needed)")
    run.add_argument("spec", help="release spec (YAML)")
    run.add_argument("--engine", choices=("prefect", "direct"), default="prefect",
                     help="'prefect' (default): the Prefect flow, ephemeral unless a server "
                     "answers; 'direct': the same steps in this process, without Prefect")
    run.add_argument("--dask", action="store_true",
                     help="run the checks in parallel on a local 2-worker Dask cluster "
                     "(flow 'release-dask'; engine prefect only)")
    run.set_defaults(func=cmd_run)

    spec = sub.add_parser("spec", help="draft or check release specs").add_subparsers(
        dest="spec_command", required=True
    )
    draft = spec.add_parser("draft", help="propose a spec from a CSV/Parquet table")
    draft.add_argument("data")
    draft.add_argument("--name", required=True)
    draft.add_argument("--target")
    draft.add_argument("--k", type=int, default=10,
                       help="categories seen in fewer rows go to 'other' (default 10; "
                       "not with --dp)")
    draft.add_argument("-o", "--output", required=True)
    draft.add_argument("--rows", type=int, default=None,
                       help="synthetic_rows of the spec (default 10000; never the row count)")
    draft.add_argument("--delta", type=float, default=None,
                       help="privacy.delta of the release (default 1e-6)")
    draft.add_argument("--dp", type=float, default=None, metavar="EPSILON",
                       help="estimate bounds and category sets under DP with this epsilon, "
                       "charged to the table's budget ledger before any row is read "
                       "(default: read them from the rows, NOT DP)")
    draft.add_argument("--dp-delta", type=float, default=1e-8,
                       help="delta of the DP draft (default 1e-8)")
    draft.add_argument("--workspace", default=".synthrelease/workspace",
                       help="private workspace whose ledger --dp charges; written into the "
                       "spec (default .synthrelease/workspace)")
    draft.add_argument("--budget-epsilon", type=float, default=10.0,
                       help="the table's lifetime budget epsilon (privacy.budget; default 10)")
    draft.add_argument("--budget-delta", type=float, default=1e-5,
                       help="the table's lifetime budget delta (privacy.budget; default 1e-5)")
    draft.add_argument("--seed", type=int, default=None,
                       help="seed the DP draft's noise (tests only: NOT private; needs "
                       "SYNTHRELEASE_TEST_NOISE=1)")
    draft.set_defaults(func=cmd_spec_draft)
    chk = spec.add_parser("check", help="validate a spec")
    chk.add_argument("spec")
    chk.set_defaults(func=cmd_spec_check)

    budget = sub.add_parser("budget", help="privacy budget ledger").add_subparsers(
        dest="budget_command", required=True
    )
    show = budget.add_parser("show", help="spend per table")
    show.add_argument("--spec", help="use the ledger of this spec's workspace")
    show.add_argument("--workspace", default=".synthrelease/workspace")
    show.add_argument("--json", action="store_true")
    show.add_argument("--entries", action="store_true",
                      help="one line per reservation: status (committed, spent, reserved, "
                      "voided) and reason")
    show.add_argument("--private", action="store_true",
                      help="with --entries: also the private reason of each settled run "
                      "(custodian only: it may say where a run failed)")
    show.set_defaults(func=cmd_budget_show)
    bset = budget.add_parser("set", help="change a table's lifetime budget (recorded)")
    bset.add_argument("name", help="dataset name")
    bset.add_argument("--epsilon", type=float, required=True)
    bset.add_argument("--delta", type=float, required=True)
    bset.add_argument("--reason", required=True, help="why (kept in the ledger)")
    bset.add_argument("--spec", help="use the ledger of this spec's workspace")
    bset.add_argument("--workspace", default=".synthrelease/workspace")
    bset.set_defaults(func=cmd_budget_set)

    rel = sub.add_parser("releases", help="published releases").add_subparsers(
        dest="releases_command", required=True
    )
    store_help = f"release store: a folder or s3://bucket/prefix (default ${DEFAULT_STORE_ENV} or ./releases)"
    for name, func, helptext in (
        ("list", cmd_releases_list, "list releases"),
        ("show", cmd_releases_show, "print a release's manifest, status and datasheet"),
        ("verify", cmd_releases_verify, "check a release's file hashes"),
        ("withdraw", cmd_releases_withdraw, "withdraw a version (logged; no longer latest)"),
        ("history", cmd_releases_history, "withdrawals and expiries of a dataset"),
        ("catalog", cmd_releases_catalog, "regenerate the store's index.html"),
    ):
        c = rel.add_parser(name, help=helptext)
        if name in ("show", "verify"):
            c.add_argument("ref", help="NAME[@VERSION]")
        elif name == "withdraw":
            c.add_argument("ref", help="NAME@VERSION")
            c.add_argument("--reason", required=True, help="why (kept in the history)")
            c.add_argument("--purge", action="store_true", help="also delete the version's files")
        elif name == "history":
            c.add_argument("name", help="dataset name")
        if name in ("list", "show"):
            c.add_argument("--json", action="store_true", help="JSON only")
        c.add_argument("--store", default=default_store(), help=store_help)
        c.set_defaults(func=func)

    pull = sub.add_parser("pull", help="download a verified release")
    pull.add_argument("ref", help="NAME[@VERSION]")
    pull.add_argument("-o", "--output", required=True)
    pull.add_argument("--store", default=default_store(), help=store_help)
    pull.add_argument("--allow-withdrawn", action="store_true",
                      help="pull a withdrawn version anyway")
    pull.set_defaults(func=cmd_pull)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    slog.configure(verbose=args.debug)
    try:
        return int(args.func(args))
    except GateFailedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except SynthReleaseError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__} (message withheld: it may quote data; "
            "rerun with --debug to see the traceback)\n"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
