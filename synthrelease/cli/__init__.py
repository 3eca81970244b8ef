"""The ``synthrelease`` command line.

Errors end as one line ``error: ...`` on stderr and a non-zero exit code; a traceback
only with ``--debug``. Messages of unexpected exceptions are not printed (a library's
message can quote data); their type is. Heavy libraries are imported per command.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from synthrelease import log as slog
from synthrelease.cli.budget import cmd_budget_set, cmd_budget_show
from synthrelease.cli.output import DEFAULT_STORE_ENV, default_store
from synthrelease.cli.plan import cmd_plan
from synthrelease.cli.release import LOCAL_DASK, cmd_run, cmd_spec_check, cmd_spec_draft
from synthrelease.cli.releases import (
    cmd_pull,
    cmd_releases_catalog,
    cmd_releases_history,
    cmd_releases_list,
    cmd_releases_show,
    cmd_releases_verify,
    cmd_releases_withdraw,
)
from synthrelease.errors import GateFailedError, SynthReleaseError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synthrelease",
        description="Release differentially private synthetic data from sensitive tables.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and Prefect logs")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a release (Prefect flow, no server needed)")
    run.add_argument("spec", help="release spec (YAML)")
    run.add_argument(
        "--engine",
        choices=("prefect", "direct"),
        default="prefect",
        help="'prefect' (default): the Prefect flow, ephemeral unless a server "
        "answers; 'direct': the same steps in this process, without Prefect",
    )
    run.add_argument(
        "--dask",
        nargs="?",
        const=LOCAL_DASK,
        default=None,
        metavar="ADDRESS",
        help="alone: run the checks in parallel on a local 2-worker Dask cluster (flow "
        "'release-dask'; engine prefect only); with a scheduler's ADDRESS: read the "
        "files of a Parquet dataset and run the checks on that cluster (its workers must "
        "see the workspace)",
    )
    run.add_argument(
        "--anyway",
        action="store_true",
        help="run even when the spec's plan says the gate cannot be expected to pass",
    )
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser(
        "plan", help="what the release will look like, before any row is read (public)"
    )
    plan.add_argument("spec", help="release spec (YAML)")
    plan.add_argument(
        "--rows",
        type=int,
        default=None,
        metavar="N",
        help="the table's row count, as the custodian declares it (default: the spec's "
        "expected_rows)",
    )
    plan.add_argument(
        "--holdout-rows",
        type=int,
        default=None,
        metavar="N",
        help="rows of a holdout source (default: half the rows, said so)",
    )
    plan.add_argument(
        "--measure",
        type=float,
        default=None,
        metavar="EPSILON",
        help="READS THE ROWS: charge EPSILON to the table's budget, then measure every "
        "column's 1-way marginal under DP for the plan's stand-in (kept in the workspace; "
        "later plans of the same domain use it)",
    )
    plan.add_argument(
        "--measure-delta",
        type=float,
        default=None,
        metavar="DELTA",
        help="delta of --measure (default: the spec's privacy.delta)",
    )
    plan.add_argument(
        "--again",
        action="store_true",
        help="with --measure: measure (and pay) again although this domain was measured",
    )
    plan.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed --measure's noise (tests only: NOT private; needs SYNTHRELEASE_TEST_NOISE=1)",
    )
    plan.add_argument("--json", action="store_true", help="the plan as JSON")
    plan.add_argument("--fresh", action="store_true", help="simulate again (ignore the cache)")
    plan.set_defaults(func=cmd_plan)

    spec = sub.add_parser("spec", help="draft or check release specs").add_subparsers(
        dest="spec_command", required=True
    )
    draft = spec.add_parser("draft", help="propose a spec from a CSV/Parquet table")
    draft.add_argument("data")
    draft.add_argument("--name", required=True)
    draft.add_argument("--target")
    draft.add_argument(
        "--k",
        type=int,
        default=10,
        help="categories seen in fewer rows go to 'other' (default 10; not with --dp)",
    )
    draft.add_argument("-o", "--output", required=True)
    draft.add_argument(
        "--rows",
        type=int,
        default=None,
        help="synthetic_rows of the spec (default 10000; never the row count)",
    )
    draft.add_argument(
        "--delta", type=float, default=None, help="privacy.delta of the release (default 1e-6)"
    )
    draft.add_argument(
        "--expected-rows",
        type=int,
        default=None,
        metavar="N",
        help="about how many rows the table holds (expected_rows, public; what the draft's "
        "choices and `plan` predict from). Default: the row count rounded down to two "
        "significant digits (NOT DP), or with --dp a DP count charged with the draft",
    )
    draft.add_argument(
        "--dp",
        type=float,
        default=None,
        metavar="EPSILON",
        help="estimate bounds and category sets under DP with this epsilon, "
        "charged to the table's budget ledger before any row is read "
        "(default: read them from the rows, NOT DP)",
    )
    draft.add_argument(
        "--dp-delta", type=float, default=1e-8, help="delta of the DP draft (default 1e-8)"
    )
    draft.add_argument(
        "--workspace",
        default=".synthrelease/workspace",
        help="private workspace whose ledger --dp charges; written into the "
        "spec (default .synthrelease/workspace)",
    )
    draft.add_argument(
        "--budget-epsilon",
        type=float,
        default=10.0,
        help="the table's lifetime budget epsilon (privacy.budget; default 10)",
    )
    draft.add_argument(
        "--budget-delta",
        type=float,
        default=1e-5,
        help="the table's lifetime budget delta (privacy.budget; default 1e-5)",
    )
    draft.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed the DP draft's noise (tests only: NOT private; needs SYNTHRELEASE_TEST_NOISE=1)",
    )
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
    show.add_argument(
        "--entries",
        action="store_true",
        help="one line per reservation: status (committed, spent, reserved, voided) and reason",
    )
    show.add_argument(
        "--private",
        action="store_true",
        help="with --entries: also the private reason of each settled run "
        "(custodian only: it may say where a run failed)",
    )
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
    pull.add_argument(
        "--allow-withdrawn", action="store_true", help="pull a withdrawn version anyway"
    )
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
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__} (message withheld: it may quote data; "
            "rerun with --debug to see the traceback)\n"
        )
        return 1
