"""The public side of ``synthrelease spec draft``: what it decides without reading a row.

The argument checks, the spec's skeleton (everything but the columns), the generator's
bins and the gate once the columns are drafted, and the comments at the head of the
drafted file that say how each was chosen. Public facts only (the header, the target,
the arguments, the drafted columns and expected_rows): nothing here reads the rows,
which is ``draft``'s part.

**Row count and delta** no longer depend on the rows: ``synthetic_rows`` is ``--rows``
(default 10000) and ``privacy.delta`` is ``--delta`` (default 1e-6); the spec's
``provenance`` says ``default`` for a value left at its default, ``declared`` for one
given on the command line. ``expected_rows`` (what ``synthrelease plan`` and the choices
below predict from; never used by the release) is ``--expected-rows`` (``declared``);
else, plain draft, the row count rounded DOWN to two significant digits
(:func:`synthrelease.planning.round_rows`; ``drafted``, NOT DP); DP draft, a Gaussian
count (:func:`dp_domain.dp_row_count`, sensitivity 1, rounded to an integer) bought with
one more equal share of the draft's zCDP budget (``dp``): with ``c`` columns the rho
total splits in ``c + 1`` equal shares (``c`` with ``--expected-rows``), all in the same
ledger entry. The lifetime budget (``--budget-epsilon``, ``--budget-delta``) goes to
``privacy.budget``; the workspace (``--workspace``, whose ledger a DP draft charges) to
``workspace.path``.

**Generator, bins, gate** (public choices, after the columns are drafted; see
:mod:`synthrelease.planning.choices`): ``generator.name`` is
``choose_generator(columns=, target=)``; its ``params`` are ``{bins: suggest_bins(rows=
expected_rows, epsilon=, delta=, columns=)}`` and nothing else (AIM takes the target
from the spec's ``target``); the gate is today's defaults updated by
``planning.gate_for_draft``. The header comment of the drafted file says how each was
chosen.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any

from synthrelease.errors import SpecError
from synthrelease.planning import choose_generator
from synthrelease.planning.choices import AIM_MAX_COLUMNS
from synthrelease.private.draft_columns import OTHER
from synthrelease.spec import CsvSource, ParquetSource

DEFAULT_K = 10
DEFAULT_ROWS = 10_000
DEFAULT_DELTA = 1e-6
DEFAULT_RELEASE_EPSILON = 1.0
DEFAULT_BUDGET_EPSILON = 10.0
DEFAULT_BUDGET_DELTA = 1e-5
DEFAULT_DP_DELTA = 1e-8
DEFAULT_WORKSPACE = Path(".synthrelease/workspace")
DEFAULT_GATE: dict[str, Any] = {
    "max_tvd_1way": 0.1,
    "max_tvd_2way": 0.2,
    "max_exact_copy_excess": 0.03,
    "expectations": True,
}
HEADER = """\
# Release spec DRAFTED by `synthrelease spec draft` from {data}.
#
# REVIEW BEFORE USE. Everything below becomes PUBLIC with the release: the column
# types, the numeric/date bounds and the category sets are published in the manifest
# and shape the synthetic data.
"""
HEADER_PLAIN = """\
# The domains below were READ FROM THE ROWS WITHOUT DIFFERENTIAL PRIVACY: each says
# `provenance: drafted`, and a release made from them says so in its manifest, README
# and catalog entry. So were the column types (0/1 and yes/no columns are booleans, a
# few whole numbers are categories) and, unless declared, expected_rows. The draft
# protects rare values (categories seen in fewer than {k} rows are left out and go to the
# '{other}' bucket; bounds are rounded outward, never the exact min/max; every column is
# declared nullable), but prefer bounds and category sets from your data's
# documentation: replace them and set `provenance: declared`, or draft again with
# `--dp EPSILON` to estimate them under DP.
"""
HEADER_DP = """\
# The bounds and category sets below were estimated under ({eps:g}, {delta:g})-DP
# (`provenance: dp`), charged to the budget of table '{name}' as ledger entry {run_id}.
# Column kinds come from the file header and the column dtypes (not DP); booleans and
# whole-number categories were decided from the DP estimates.
"""
HEADER_TAIL = """\
# synthetic_rows and privacy.delta are public choices, never derived from the rows. The
# privacy budget below is a default: set it to your organisation's policy.
"""
ROWS_NOTE = {
    "drafted": "the table's row count rounded DOWN to two significant digits, read from "
    "the rows WITHOUT DP",
    "declared": "declared with --expected-rows",
    "dp": "a DP count (Gaussian, one more equal share of the --dp budget, charged in the "
    "same ledger entry)",
}
TARGET_NOTE = (
    "target '{target}': no 'other' bucket, so it keeps its own classes; its values {rare} "
    "are left out, and rows holding them are DROPPED at release."
)
TARGET_RARE = {"plain": "seen in fewer than {k} rows", "dp": "not selected by the DP draft"}


def comment(items: list[str]) -> str:
    """``items`` as a bulleted YAML comment, wrapped at 88 characters."""
    lines = []
    for item in items:
        lines += textwrap.wrap(item, 88, initial_indent="# - ", subsequent_indent="#   ")
    return "\n".join(lines) + "\n"


def plain_header(data: str, *, k: int) -> str:
    """The head of a plain-drafted file (``data``: the table file's name)."""
    return HEADER.format(data=data) + HEADER_PLAIN.format(k=k, other=OTHER)


def dp_header(data: str, *, epsilon: float, delta: float, name: str, run_id: str) -> str:
    """The head of a DP-drafted file: the spend and its ledger entry."""
    return HEADER.format(data=data) + HEADER_DP.format(
        eps=epsilon, delta=delta, name=name, run_id=run_id
    )


def check_args(
    *,
    k: int,
    rows: int,
    delta: float,
    budget_epsilon: float,
    budget_delta: float,
    dp: float | None,
    dp_delta: float,
    expected_rows: int | None,
) -> None:
    """Refuse out-of-range arguments before anything is read (messages name the flag,
    never a value of the table)."""
    if k < 1:
        raise SpecError("--k must be at least 1")
    if not 1 <= rows <= 100_000_000:
        raise SpecError("--rows must be between 1 and 100000000")
    if expected_rows is not None and not 1 <= expected_rows <= 100_000_000_000:
        raise SpecError("--expected-rows must be between 1 and 100000000000")
    if not (0 < delta < 1e-2):
        raise SpecError("--delta must be in (0, 0.01)")
    if not (budget_epsilon > 0 and math.isfinite(budget_epsilon)):
        raise SpecError("--budget-epsilon must be a positive number")
    if not (0 < budget_delta < 1):
        raise SpecError("--budget-delta must be in (0, 1)")
    if delta > budget_delta:
        raise SpecError("--delta is larger than --budget-delta")
    if dp is not None:
        if not (0 < dp <= 100 and math.isfinite(dp)):
            raise SpecError("--dp must be a positive epsilon (at most 100)")
        if not (0 < dp_delta < 1e-2):
            raise SpecError("--dp-delta must be in (0, 0.01)")
        if dp > budget_epsilon or dp_delta > budget_delta:
            raise SpecError(
                "--dp / --dp-delta exceed the lifetime budget (--budget-epsilon / --budget-delta)"
            )


def check_header(header: list[str], *, target: str | None, data: Path) -> None:
    """Refuse a target that is not a column, and duplicate column names (the header is
    public: no row is read)."""
    if target is not None and target not in header:
        raise SpecError(f"--target {target!r} is not a column of {data}")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise SpecError(f"{data}: duplicate column names {dupes}")


def skeleton(
    *,
    name: str,
    source: CsvSource | ParquetSource,
    data: Path,
    header: list[str],
    target: str | None,
    rows: int | None,
    delta: float | None,
    expected_rows: int | None,
    dp: float | None,
    budget: tuple[float, float],
    workspace: Path,
    base: Path,
) -> dict[str, Any]:
    """The drafted spec but its columns: from the header, the target and the arguments
    (``rows``/``delta`` as given, None when left at their defaults); paths relative to
    ``base``, the drafted file's folder."""
    budget_epsilon, budget_delta = budget
    release_epsilon = min(DEFAULT_RELEASE_EPSILON, budget_epsilon - (dp or 0.0))
    if release_epsilon <= 0:
        raise SpecError("--dp leaves nothing of --budget-epsilon for the release")
    release_epsilon = float(f"{release_epsilon:.6g}")
    generator = choose_generator(columns=len(header), target=target)  # header + target only
    raw: dict[str, Any] = {
        "name": name,
        "source": {"kind": source.kind, "path": _rel(data, base)},
        "schema": {"columns": {}},
        "privacy": {
            "epsilon": release_epsilon,
            "delta": DEFAULT_DELTA if delta is None else float(delta),
            "budget": {"epsilon": float(budget_epsilon), "delta": float(budget_delta)},
            "noise": "secure",
        },
        "generator": {"name": generator, "params": {}},
        "holdout": {"fraction": 0.2},
        "synthetic_rows": DEFAULT_ROWS if rows is None else int(rows),
        "expected_rows": expected_rows,
        "gate": dict(DEFAULT_GATE),
        "workspace": {"path": _rel(workspace, base)},
        "store": {"uri": "releases"},
        "provenance": {
            "synthetic_rows": "default" if rows is None else "declared",
            "delta": "default" if delta is None else "declared",
            "expected_rows": "declared",
        },
    }
    if target is not None:
        raw["target"] = target
    return raw


def explain_choices(
    raw: dict[str, Any], *, columns: int, target: str | None, planned: dict[str, Any]
) -> str:
    """The header comment that says how ``raw``'s expected_rows, generator, bins and gate
    were chosen (``planned``: what ``planning.gate_for_draft`` set over the defaults)."""
    rows = int(raw["expected_rows"])
    eps, delta = raw["privacy"]["epsilon"], raw["privacy"]["delta"]
    bins = raw["generator"]["params"]["bins"]
    name = raw["generator"]["name"]
    if name == "aim":
        why = (
            f"a target and at most {AIM_MAX_COLUMNS} columns: AIM's default workload (every "
            f"2-way marginal and every 3-way marginal holding '{target}') spends its rounds "
            "on the target"
        )
    elif target is None:
        why = (
            "no target, so no workload to favour: MST (every 1-way marginal and a tree of "
            "2-way marginals)"
        )
    else:
        why = (
            f"a target, but more than {AIM_MAX_COLUMNS} (or fewer than 3) columns: MST, "
            "whose cost grows slowest with the column count"
        )
    gate = (
        "the defaults updated by planning.gate_for_draft (" + ", ".join(sorted(planned)) + ")"
        if planned
        else "the defaults (planning.gate_for_draft had nothing to add)"
    )
    prov = raw["provenance"]["expected_rows"]
    return "# Chosen for this table from public facts (synthrelease/planning/choices.py):\n" + (
        comment(
            [
                f"expected_rows {rows}: {ROWS_NOTE[prov]}; only `synthrelease plan` and the "
                "choices below use it;",
                f"generator {name}: {why};",
                f"params.bins {bins}: bins of each wide numeric column, from expected_rows, "
                f"epsilon {eps:g}, delta {delta:g} and {columns} columns (fewer rows or "
                "less epsilon, more columns: fewer bins); integer columns of small span get "
                "one code per value;",
                f"gate: {gate}; its privacy thresholds are the defaults.",
            ]
        )
    )


def target_note(target: str, *, plain: bool, k: int) -> str:
    """The comment on a categorical target: no ``other`` bucket, rare labels dropped."""
    rare = TARGET_RARE["plain" if plain else "dp"].format(k=k)
    return comment([TARGET_NOTE.format(target=target, rare=rare)])


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # different drives
        return str(path)
