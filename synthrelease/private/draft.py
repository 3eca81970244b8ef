"""``synthrelease spec draft``: propose a complete spec from a table.

Trusted reader: it reads the rows, and what it writes becomes *public* once released.
So the proposal never makes rare values or exact extremes public:

- a category seen in fewer than ``k`` rows (default 10) is left out of the category set
  and goes to the ``other`` bucket, which every drafted categorical column declares
  (so the bucket's presence says nothing either);
- numeric and datetime bounds are rounded *outward* to a coarse step and pushed one step
  further where the rounding would land on the exact minimum or maximum;
- every column is declared nullable (whether a column has a null is itself a fact);
- the synthetic row count is the row count rounded to two significant digits.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import SpecError
from synthrelease.private.sources import load_raw, source_for_file
from synthrelease.spec import parse_spec

DEFAULT_K = 10
OTHER = "other"
HEADER = """\
# Release spec DRAFTED by `synthrelease spec draft` from {data}.
#
# REVIEW BEFORE USE. Everything below becomes PUBLIC with the release: the column
# types, the numeric/date bounds and the category sets are published in the manifest
# and shape the synthetic data. The draft already protects rare values (categories seen
# in fewer than {k} rows are left out and go to the '{other}' bucket; bounds are rounded
# outward, never the exact min/max; every column is declared nullable), but prefer
# bounds and category sets from your data's documentation over these derived ones.
# The privacy budget below is a default: set it to your organisation's policy.
"""


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


def _round_dates(lo: pd.Timestamp, hi: pd.Timestamp) -> tuple[dt.datetime, dt.datetime]:
    lower = dt.datetime(lo.year, 1, 1)
    if pd.Timestamp(lower) >= lo:
        lower = dt.datetime(lo.year - 1, 1, 1)
    upper = dt.datetime(hi.year + 1, 1, 1)
    return lower, upper


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


def _draft_column(values: pd.Series, *, k: int) -> dict[str, Any]:
    present = values.dropna()
    if present.empty:
        return {"type": "categorical", "nullable": True, "categories": [], "other": OTHER}
    if _looks_boolean(present):
        return {"type": "boolean", "nullable": True}
    if pd.api.types.is_numeric_dtype(present):
        x = present.to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return {"type": "categorical", "nullable": True, "categories": [], "other": OTHER}
        integer = bool(np.all(np.mod(finite, 1) == 0))
        lower, upper = _round_outward(float(finite.min()), float(finite.max()), integer=integer)
        col: dict[str, Any] = {"type": "numerical", "nullable": True, "lower": lower, "upper": upper}
        if integer:
            col.update(lower=int(lower), upper=int(upper), integer=True)
        return col
    dates = _as_dates(present)
    if dates is not None:
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert(None)
        lower, upper = _round_dates(dates.min(), dates.max())
        return {"type": "datetime", "nullable": True, "lower": lower.isoformat(), "upper": upper.isoformat()}
    counts = present.astype(str).value_counts()
    kept = sorted(str(c) for c, n in counts.items() if n >= k)
    other = OTHER if OTHER not in kept else "__other__"
    return {"type": "categorical", "nullable": True, "categories": kept, "other": other}


def _round_rows(n: int) -> int:
    if n < 1000:
        return 1000
    digits = int(math.floor(math.log10(n))) - 1
    return int(round(n, -digits))


def draft_spec(
    data: Path, *, name: str, output: Path, target: str | None = None, k: int = DEFAULT_K
) -> dict[str, Any]:
    """Read ``data`` and write a reviewed-to-be spec to ``output``; returns the mapping."""
    import yaml

    if k < 1:
        raise SpecError("--k must be at least 1")
    source = source_for_file(Path(data))
    frame = load_raw(source, label=name).reveal()
    if target is not None and target not in frame.columns:
        raise SpecError(f"--target {target!r} is not a column of {data}")
    n = int(frame.shape[0])
    delta = min(1e-6, 10.0 ** -(math.ceil(math.log10(max(n, 10))) + 1))
    out_dir = output.resolve().parent
    raw: dict[str, Any] = {
        "name": name,
        "source": {"kind": source.kind, "path": _rel(Path(data).resolve(), out_dir)},
        "schema": {"columns": {str(c): _draft_column(frame[c], k=k) for c in frame.columns}},
        "privacy": {
            "epsilon": 1.0,
            "delta": float(f"{delta:.0e}"),
            "budget": {"epsilon": 10.0, "delta": float(f"{delta * 10:.0e}")},
            "noise": "secure",
        },
        "generator": {"name": "mst", "params": {"bins": 32}},
        "holdout": {"fraction": 0.2},
        "synthetic_rows": _round_rows(n),
        "gate": {"max_tvd_1way": 0.1, "max_tvd_2way": 0.2, "max_exact_copy_excess": 0.03,
                 "expectations": True},
        "workspace": {"path": ".synthrelease/workspace"},
        "store": {"uri": "releases"},
    }
    if target is not None:
        raw["target"] = target
    parse_spec(raw, base=out_dir, origin="drafted spec")  # the draft must validate
    text = HEADER.format(data=Path(data).name, k=k, other=OTHER)
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return raw


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # different drives
        return str(path)
