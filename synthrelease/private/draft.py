"""``synthrelease spec draft``: propose a complete spec from a table.

Trusted reader: it reads the rows, and what it writes becomes *public* once released.
Two modes.

**Plain draft (default): NOT differentially private.** Bounds and category sets are read
from the rows, so every drafted column says ``provenance: drafted``, and a release made
from such a spec says, in its manifest, README and catalog entry, that those domains
were read from the rows without DP. The draft still avoids the worst leaks:

- a category seen in fewer than ``k`` rows (default 10) is left out of the category set
  and goes to the ``other`` bucket, which every drafted categorical column declares
  (so the bucket's presence says nothing either);
- numeric and datetime bounds are rounded *outward* to a coarse step and pushed one step
  further where the rounding would land on the exact minimum or maximum;
- every column is declared nullable (whether a column has a null is itself a fact).

**DP draft (``--dp EPSILON``).** Bounds and category sets are estimated under
(EPSILON, ``--dp-delta``)-DP with the mechanisms of ``generators/dp_domain.py``, and the
spend is charged to the table's budget ledger as an entry of its own (``draft-<uuid>``)
*before* any row is read; it is marked ``spent`` once the rows were read, whatever
happens next. Drafted columns say ``provenance: dp`` and the spec's
``provenance.domain_estimate`` records the spend (the manifest adds it to the release's
own guarantee). How:

- the budget is split before any row is read, from the header alone: half of
  ``--dp-delta`` converts the zCDP total to (epsilon, delta) (Canonne-Kamath-Steinke),
  the other half pays the partition selection of categorical columns; the zCDP total and
  that half of delta are split equally over *all* columns of the header, whatever their
  type turns out to be (so the plan does not depend on the rows);
- numeric bounds: :func:`dp_domain.dp_bounds`, a Gaussian histogram on dp_domain's
  fixed, public grid (sign, then quarter-octaves from 2^-8 to 2^50, plus zero and
  overflow cells). That grid *is* the public coarse range the histogram needs: no range
  has to be declared, and bounds come out as grid edges (a relative resolution of about
  19%), then rounded outward to two significant digits (post-processing);
- datetime bounds: the same histogram over days since 1970-01-01 (a public origin),
  rounded outward to 1 January;
- category sets: :func:`dp_domain.dp_categories` (Gaussian partition selection; rare
  values are suppressed and go to the ``other`` bucket, which every categorical column
  declares). No ``k`` threshold applies: the DP threshold replaces it;
- noise: :meth:`NoiseSource.secure` (OS CSPRNG); seeded only for tests, when the
  environment sets ``SYNTHRELEASE_TEST_NOISE=1`` *and* ``--seed`` is given.

**Column types (both modes) come from the file header and the column dtypes** (Parquet:
its schema; CSV: the types pandas infers, plus a check for true/false text and ISO
dates). Types are read from the rows and are not covered by DP; review them.

**Row count and delta (both modes)** no longer depend on the rows: ``synthetic_rows``
is ``--rows`` (default 10000) and ``privacy.delta`` is ``--delta`` (default 1e-6); the
spec's ``provenance`` says ``default`` for a value left at its default, ``declared``
for one given on the command line. The lifetime budget (``--budget-epsilon``,
``--budget-delta``) goes to ``privacy.budget``; the workspace (``--workspace``, whose
ledger a DP draft charges) to ``workspace.path``.

Modules: this one reads the rows and writes the spec; ``draft_columns`` (types and plain
domains) and ``draft_dp`` (DP domains and the budget plan) work on the columns it reads.
Values are read by :mod:`synthrelease.values`, as the release reads them.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

from synthrelease.errors import SpecError
from synthrelease.ledger import ledger_at
from synthrelease.private.draft_columns import OTHER, draft_column
from synthrelease.private.draft_dp import dp_column, draft_noise, plan_dp_draft
from synthrelease.private.sources import load_raw, read_header, source_for_file
from synthrelease.spec import Budget, CsvSource, ParquetSource, parse_spec

DEFAULT_K = 10
DEFAULT_ROWS = 10_000
DEFAULT_DELTA = 1e-6
DEFAULT_RELEASE_EPSILON = 1.0
DEFAULT_BUDGET_EPSILON = 10.0
DEFAULT_BUDGET_DELTA = 1e-5
DEFAULT_DP_DELTA = 1e-8
DEFAULT_WORKSPACE = Path(".synthrelease/workspace")
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
# and catalog entry. The draft protects rare values (categories seen in fewer than {k}
# rows are left out and go to the '{other}' bucket; bounds are rounded outward, never
# the exact min/max; every column is declared nullable), but prefer bounds and category
# sets from your data's documentation: replace them and set `provenance: declared`, or
# draft again with `--dp EPSILON` to estimate them under DP.
"""
HEADER_DP = """\
# The bounds and category sets below were estimated under ({eps:g}, {delta:g})-DP
# (`provenance: dp`), charged to the budget of table '{name}' as ledger entry {run_id}.
# Column types come from the file header and the column dtypes (not DP).
"""
HEADER_TAIL = """\
# synthetic_rows and privacy.delta are public choices, never derived from the rows. The
# privacy budget below is a default: set it to your organisation's policy.
"""


# --------------------------------------------------------------------------- draft
def _check_args(
    *,
    k: int,
    rows: int,
    delta: float,
    budget_epsilon: float,
    budget_delta: float,
    dp: float | None,
    dp_delta: float,
) -> None:
    if k < 1:
        raise SpecError("--k must be at least 1")
    if not 1 <= rows <= 100_000_000:
        raise SpecError("--rows must be between 1 and 100000000")
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


def draft_spec(
    data: Path,
    *,
    name: str,
    output: Path,
    target: str | None = None,
    k: int = DEFAULT_K,
    rows: int | None = None,
    delta: float | None = None,
    dp: float | None = None,
    dp_delta: float = DEFAULT_DP_DELTA,
    workspace: Path = DEFAULT_WORKSPACE,
    budget_epsilon: float = DEFAULT_BUDGET_EPSILON,
    budget_delta: float = DEFAULT_BUDGET_DELTA,
    seed: int | None = None,
) -> dict[str, Any]:
    """Read ``data`` and write a reviewed-to-be spec to ``output``; returns the mapping.

    ``dp``: draft the domains under (dp, dp_delta)-DP, charged to the ledger of
    ``workspace`` under ``name`` with the lifetime budget (budget_epsilon, budget_delta)
    before any row is read. Without it the domains are read from the rows (NOT DP).
    """
    import yaml

    n_rows = DEFAULT_ROWS if rows is None else int(rows)
    release_delta = DEFAULT_DELTA if delta is None else float(delta)
    _check_args(
        k=k,
        rows=n_rows,
        delta=release_delta,
        budget_epsilon=budget_epsilon,
        budget_delta=budget_delta,
        dp=dp,
        dp_delta=dp_delta,
    )
    source = source_for_file(Path(data))
    header = [str(c) for c in read_header(source)]  # public: no row is read here
    if target is not None and target not in header:
        raise SpecError(f"--target {target!r} is not a column of {data}")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise SpecError(f"{data}: duplicate column names {dupes}")
    release_epsilon = min(DEFAULT_RELEASE_EPSILON, budget_epsilon - (dp or 0.0))
    if release_epsilon <= 0:
        raise SpecError("--dp leaves nothing of --budget-epsilon for the release")
    out_dir = output.resolve().parent
    ws_path = Path(workspace).resolve()
    raw: dict[str, Any] = {
        "name": name,
        "source": {"kind": source.kind, "path": _rel(Path(data).resolve(), out_dir)},
        "schema": {"columns": {}},
        "privacy": {
            "epsilon": float(f"{release_epsilon:.6g}"),
            "delta": release_delta,
            "budget": {"epsilon": float(budget_epsilon), "delta": float(budget_delta)},
            "noise": "secure",
        },
        "generator": {"name": "mst", "params": {"bins": 32}},
        "holdout": {"fraction": 0.2},
        "synthetic_rows": n_rows,
        "gate": {
            "max_tvd_1way": 0.1,
            "max_tvd_2way": 0.2,
            "max_exact_copy_excess": 0.03,
            "expectations": True,
        },
        "workspace": {"path": _rel(ws_path, out_dir)},
        "store": {"uri": "releases"},
        "provenance": {
            "synthetic_rows": "default" if rows is None else "declared",
            "delta": "default" if delta is None else "declared",
        },
    }
    if target is not None:
        raw["target"] = target
    # Everything but the domains must validate before a row is read (or a budget charged).
    parse_spec(
        {**raw, "schema": {"columns": {c: {"type": "boolean"} for c in header}}},
        base=out_dir,
        origin="drafted spec",
    )
    if dp is None:
        frame = load_raw(source, label=name).reveal()
        raw["schema"]["columns"] = {str(c): draft_column(frame[c], k=k) for c in frame.columns}
        del frame
        text = HEADER.format(data=Path(data).name) + HEADER_PLAIN.format(k=k, other=OTHER)
    else:
        run_id = f"draft-{uuid.uuid4()}"
        raw["schema"]["columns"] = _dp_columns(
            source,
            name=name,
            header=header,
            epsilon=dp,
            delta=dp_delta,
            workspace=ws_path,
            budget=(budget_epsilon, budget_delta),
            run_id=run_id,
            seed=seed,
        )
        raw["provenance"]["domain_estimate"] = {
            "epsilon": float(dp),
            "delta": float(dp_delta),
            "run_id": run_id,
        }
        text = HEADER.format(data=Path(data).name) + HEADER_DP.format(
            eps=dp, delta=dp_delta, name=name, run_id=run_id
        )
    text += HEADER_TAIL
    parse_spec(raw, base=out_dir, origin="drafted spec")  # the draft must validate
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return raw


def _dp_columns(
    source: CsvSource | ParquetSource,
    *,
    name: str,
    header: list[str],
    epsilon: float,
    delta: float,
    workspace: Path,
    budget: tuple[float, float],
    run_id: str,
    seed: int | None,
) -> dict[str, dict[str, Any]]:
    """Charge the ledger, then read the rows and estimate every column's domain."""
    rho_each, delta_each = plan_dp_draft(epsilon=epsilon, delta=delta, columns=len(header))
    noise = draft_noise(seed)  # refuses a seed without the test switch, before any charge
    lifetime = Budget(epsilon=budget[0], delta=budget[1])
    ledger = ledger_at(workspace)  # the custodian's ledger when $SYNTHRELEASE_LEDGER_URL is set
    try:
        rid = ledger.reserve(
            name, epsilon=float(epsilon), delta=float(delta), budget=lifetime, run_id=run_id
        )
        try:  # from here on the rows are read: the spend is never refunded
            frame = load_raw(source, label=name).reveal()
            columns = {
                str(c): dp_column(frame, c, rho=rho_each, delta=delta_each, noise=noise, label=name)
                for c in frame.columns
            }
            del frame
        finally:
            ledger.mark_spent(rid, reason="spec draft --dp")
    finally:
        ledger.close()
    return columns


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # different drives
        return str(path)
