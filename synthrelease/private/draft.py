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
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import SpecError
from synthrelease.private.sources import load_raw, read_header, source_for_file
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import parse_spec

DEFAULT_K = 10
DEFAULT_ROWS = 10_000
DEFAULT_DELTA = 1e-6
DEFAULT_RELEASE_EPSILON = 1.0
DEFAULT_BUDGET_EPSILON = 10.0
DEFAULT_BUDGET_DELTA = 1e-5
DEFAULT_DP_DELTA = 1e-8
DEFAULT_WORKSPACE = Path(".synthrelease/workspace")
TEST_NOISE_ENV = "SYNTHRELEASE_TEST_NOISE"
DATE_ORIGIN = pd.Timestamp("1970-01-01")
OTHER = "other"
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


# --------------------------------------------------------------------------- rounding
def _round_outward(lo: float, hi: float, *, integer: bool) -> tuple[float, float]:
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1.0)
    step = 10.0 ** math.floor(math.log10(span))
    if integer:
        step = max(step, 1.0)
    lower = math.floor(lo / step) * step
    upper = math.ceil(hi / step) * step
    if lower >= lo:
        lower -= step
    if upper <= hi:
        upper += step
    if integer:
        lower, upper = float(int(lower)), float(int(upper))
    return lower, upper


def _round_sig(value: float, *, up: bool, digits: int = 2) -> float:
    """``value`` rounded away from the inside (up or down) to ``digits`` significant digits."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    step = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
    q = value / step
    r = math.ceil(q - 1e-9) if up else math.floor(q + 1e-9)
    return float(f"{r * step:.{digits + 2}g}")


def _round_dates(lo: pd.Timestamp, hi: pd.Timestamp) -> tuple[dt.datetime, dt.datetime]:
    lower = dt.datetime(lo.year, 1, 1)
    if pd.Timestamp(lower) >= lo:
        lower = dt.datetime(lo.year - 1, 1, 1)
    upper = dt.datetime(hi.year + 1, 1, 1)
    return lower, upper


# --------------------------------------------------------------------------- types
def _looks_boolean(values: pd.Series) -> bool:
    if values.dtype == bool:
        return True
    text = set(values.astype(str).str.strip().str.lower().unique())
    return bool(text) and text <= {"true", "false"}


def _as_dates(values: pd.Series) -> pd.Series | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if values.dtype != object:
        return None
    text = values.astype(str)
    if not text.str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).all():
        return None
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    return parsed if parsed.notna().all() else None


def _naive(dates: pd.Series) -> pd.Series:
    return dates.dt.tz_convert(None) if getattr(dates.dt, "tz", None) is not None else dates


def _kind(values: pd.Series) -> str:
    """Column type from the dtype (and, for text, true/false or ISO-date content)."""
    present = values.dropna()
    if present.empty:
        return "empty"
    if _looks_boolean(present):
        return "boolean"
    if pd.api.types.is_numeric_dtype(present):
        return "numerical"
    if _as_dates(present) is not None:
        return "datetime"
    return "categorical"


def _empty_categorical(provenance: str) -> dict[str, Any]:
    return {"type": "categorical", "nullable": True, "categories": [], "other": OTHER,
            "provenance": provenance}


def _other_label(kept: list[str]) -> str:
    other = OTHER
    while other in kept:
        other = f"_{other}_"
    return other


# --------------------------------------------------------------------------- plain
def _draft_column(values: pd.Series, *, k: int) -> dict[str, Any]:
    """A column read from the rows WITHOUT DP (``provenance: drafted``)."""
    present = values.dropna()
    kind = _kind(values)
    if kind == "empty":
        return _empty_categorical("drafted")
    if kind == "boolean":
        return {"type": "boolean", "nullable": True, "provenance": "drafted"}
    if kind == "numerical":
        x = present.to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return _empty_categorical("drafted")
        integer = bool(np.all(np.mod(finite, 1) == 0))
        lower, upper = _round_outward(float(finite.min()), float(finite.max()), integer=integer)
        col: dict[str, Any] = {"type": "numerical", "nullable": True, "lower": lower, "upper": upper}
        if integer:
            col.update(lower=int(lower), upper=int(upper), integer=True)
        col["provenance"] = "drafted"
        return col
    if kind == "datetime":
        dates = _naive(_as_dates(present))
        lower, upper = _round_dates(dates.min(), dates.max())
        return {"type": "datetime", "nullable": True, "lower": lower.isoformat(),
                "upper": upper.isoformat(), "provenance": "drafted"}
    counts = present.astype(str).value_counts()
    kept = sorted(str(c) for c, n in counts.items() if n >= k)
    return {"type": "categorical", "nullable": True, "categories": kept,
            "other": _other_label(kept), "provenance": "drafted"}


# --------------------------------------------------------------------------- DP
def _dp_numeric(table: SensitiveTable, name: str, *, integer: bool, rho: float,
                noise: Any) -> tuple[float, float]:
    from synthrelease.errors import GeneratorError
    from synthrelease.generators import dp_domain

    try:
        lo, hi = dp_domain.dp_bounds(table, name, rho=rho, noise=noise, integer=integer)
    except GeneratorError:
        raise SpecError(
            f"column {name!r}: the DP histogram found no populated range at this --dp "
            "epsilon; raise --dp, or declare the column's bounds by hand"
        ) from None
    lower, upper = _round_sig(lo, up=False), _round_sig(hi, up=True)  # post-processing
    if integer:
        lower, upper = float(math.floor(lower)), float(math.ceil(upper))
    if lower >= upper:
        upper = lower + 1.0
    return lower, upper


def _dp_column(frame: pd.DataFrame, name: str, *, rho: float, delta: float,
               noise: Any, label: str) -> dict[str, Any]:
    """A column whose domain is a DP estimate (``provenance: dp``); the type comes from
    the dtype. Each call is one rho-zCDP measurement (plus ``delta`` for categories)."""
    from synthrelease.generators import dp_domain

    values = frame[name]
    kind = _kind(values)
    if kind == "empty":
        return _empty_categorical("dp")
    if kind == "boolean":  # the domain {true, false} is fixed: nothing to measure
        return {"type": "boolean", "nullable": True, "provenance": "dp"}
    if kind == "numerical":
        integer = bool(pd.api.types.is_integer_dtype(values.dtype))
        x = pd.to_numeric(values, errors="coerce").astype(float)
        x = x.where(np.isfinite(x), np.nan)  # infinities clip to the bounds later
        part = SensitiveTable(pd.DataFrame({name: x}), label=label)
        lower, upper = _dp_numeric(part, name, integer=integer, rho=rho, noise=noise)
        col: dict[str, Any] = {"type": "numerical", "nullable": True, "lower": lower, "upper": upper}
        if integer:
            col.update(lower=int(lower), upper=int(upper), integer=True)
        col["provenance"] = "dp"
        return col
    if kind == "datetime":
        dates = _naive(pd.to_datetime(values, errors="coerce", format="ISO8601")
                       if values.dtype == object else values)
        days = (dates - DATE_ORIGIN) / pd.Timedelta(days=1)
        part = SensitiveTable(pd.DataFrame({name: days.astype(float)}), label=label)
        lo, hi = _dp_numeric(part, name, integer=False, rho=rho, noise=noise)
        lo_t = DATE_ORIGIN + pd.Timedelta(days=math.floor(lo))
        hi_t = DATE_ORIGIN + pd.Timedelta(days=math.ceil(hi))
        lower = dt.datetime(lo_t.year, 1, 1)
        upper = dt.datetime(hi_t.year + 1, 1, 1) if hi_t > pd.Timestamp(hi_t.year, 1, 1) \
            else dt.datetime(hi_t.year, 1, 1)
        if upper <= lower:
            upper = dt.datetime(lower.year + 1, 1, 1)
        return {"type": "datetime", "nullable": True, "lower": lower.isoformat(),
                "upper": upper.isoformat(), "provenance": "dp"}
    part = SensitiveTable(pd.DataFrame({name: values}), label=label)
    kept = sorted(dp_domain.dp_categories(part, name, rho=rho, delta=delta, noise=noise))
    return {"type": "categorical", "nullable": True, "categories": kept,
            "other": _other_label(kept), "provenance": "dp"}


def plan_dp_draft(*, epsilon: float, delta: float, columns: int) -> tuple[float, float]:
    """(rho per column, partition-selection delta per column) for ``columns`` columns:
    half of ``delta`` converts the zCDP total to (epsilon, delta/2), the other half pays
    the category thresholds. Depends on the header only (the column count)."""
    from synthrelease.generators.accounting import cdp_rho

    if columns < 1:
        raise SpecError("the table has no columns")
    rho = cdp_rho(epsilon=epsilon, delta=delta / 2)
    if not rho > 0:
        raise SpecError("--dp / --dp-delta leave no budget for the DP draft")
    return rho / columns, (delta / 2) / columns


def _noise(seed: int | None):
    from synthrelease.generators.noise import NoiseSource

    if seed is None:
        return NoiseSource.secure()
    if os.environ.get(TEST_NOISE_ENV) != "1":
        raise SpecError(f"--seed makes the DP draft NOT PRIVATE: it is for tests only and "
                        f"needs the environment variable {TEST_NOISE_ENV}=1")
    return NoiseSource.seeded(seed)


# --------------------------------------------------------------------------- draft
def _check_args(*, k: int, rows: int, delta: float, budget_epsilon: float,
                budget_delta: float, dp: float | None, dp_delta: float) -> None:
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
            raise SpecError("--dp / --dp-delta exceed the lifetime budget "
                            "(--budget-epsilon / --budget-delta)")


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
    _check_args(k=k, rows=n_rows, delta=release_delta, budget_epsilon=budget_epsilon,
                budget_delta=budget_delta, dp=dp, dp_delta=dp_delta)
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
        "gate": {"max_tvd_1way": 0.1, "max_tvd_2way": 0.2, "max_exact_copy_excess": 0.03,
                 "expectations": True},
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
    parse_spec({**raw, "schema": {"columns": {c: {"type": "boolean"} for c in header}}},
               base=out_dir, origin="drafted spec")
    if dp is None:
        frame = load_raw(source, label=name).reveal()
        raw["schema"]["columns"] = {str(c): _draft_column(frame[c], k=k) for c in frame.columns}
        del frame
        text = HEADER.format(data=Path(data).name) + HEADER_PLAIN.format(k=k, other=OTHER)
    else:
        run_id = f"draft-{uuid.uuid4()}"
        raw["schema"]["columns"] = _dp_columns(
            source, name=name, header=header, epsilon=dp, delta=dp_delta, workspace=ws_path,
            budget=(budget_epsilon, budget_delta), run_id=run_id, seed=seed,
        )
        raw["provenance"]["domain_estimate"] = {"epsilon": float(dp), "delta": float(dp_delta),
                                                "run_id": run_id}
        text = HEADER.format(data=Path(data).name) + HEADER_DP.format(
            eps=dp, delta=dp_delta, name=name, run_id=run_id)
    text += HEADER_TAIL
    parse_spec(raw, base=out_dir, origin="drafted spec")  # the draft must validate
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return raw


def _dp_columns(source: Any, *, name: str, header: list[str], epsilon: float, delta: float,
                workspace: Path, budget: tuple[float, float], run_id: str,
                seed: int | None) -> dict[str, dict[str, Any]]:
    """Charge the ledger, then read the rows and estimate every column's domain."""
    from synthrelease.ledger import BudgetLedger
    from synthrelease.private.workspace import Workspace
    from synthrelease.spec import Budget

    rho_each, delta_each = plan_dp_draft(epsilon=epsilon, delta=delta, columns=len(header))
    noise = _noise(seed)  # refuses a seed without the test switch, before any charge
    lifetime = Budget(epsilon=budget[0], delta=budget[1])
    ledger = BudgetLedger.sqlite(Workspace(workspace).ensure().ledger_path)
    try:
        rid = ledger.reserve(name, epsilon=float(epsilon), delta=float(delta), budget=lifetime,
                             run_id=run_id)
        try:  # from here on the rows are read: the spend is never refunded
            frame = load_raw(source, label=name).reveal()
            columns = {str(c): _dp_column(frame, c, rho=rho_each, delta=delta_each,
                                          noise=noise, label=name) for c in frame.columns}
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
