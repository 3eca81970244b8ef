"""``spec draft``: a column's type and its plain (NOT DP) domain, read from the rows.

Pure functions on a column of the table ``synthrelease/private/draft.py`` reads. Types
come from the dtype, plus true/false text (:data:`synthrelease.values.BOOLEAN_WORDS`)
and ISO dates; values are read by :mod:`synthrelease.values`. Bounds are rounded
outward, never to the exact minimum or maximum; categories seen in fewer than ``k`` rows
go to the ``other`` bucket (see the module docstring of ``draft.py``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from synthrelease import values as read

OTHER = "other"


# --------------------------------------------------------------------------- rounding
def numerical_column(
    lower: float, upper: float, *, integer: bool, provenance: str
) -> dict[str, Any]:
    """A drafted numerical column (nullable: a draft never claims there are no nulls)."""
    col: dict[str, Any] = {"type": "numerical", "nullable": True, "lower": lower, "upper": upper}
    if integer:
        col.update(lower=int(lower), upper=int(upper), integer=True)
    col["provenance"] = provenance
    return col


def round_outward(lo: float, hi: float, *, integer: bool) -> tuple[float, float]:
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


def round_sig(value: float, *, up: bool, digits: int = 2) -> float:
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
    """Bools, or text that is all true/false words: a boolean column once drafted (and
    then read by the accepted spellings, which include these words)."""
    if values.dtype == bool:
        return True
    text = set(values.astype(str).str.strip().str.lower().unique())
    return bool(text) and text <= read.BOOLEAN_WORDS


def _as_dates(values: pd.Series) -> pd.Series | None:
    """The values as read by :func:`synthrelease.values.datetime` (naive UTC) when the
    column has a datetime dtype, or is text that all starts as an ISO date and all
    reads as a date; else None."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        if values.dtype != object:
            return None
        if not values.astype(str).str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).all():
            return None
    dates = read.datetime(values)
    return None if dates.unreadable.any() else dates.values


def column_kind(values: pd.Series) -> str:
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


def empty_categorical(provenance: str) -> dict[str, Any]:
    return {
        "type": "categorical",
        "nullable": True,
        "categories": [],
        "other": OTHER,
        "provenance": provenance,
    }


def other_label(kept: list[str]) -> str:
    other = OTHER
    while other in kept:
        other = f"_{other}_"
    return other


# --------------------------------------------------------------------------- plain
def draft_column(values: pd.Series, *, k: int) -> dict[str, Any]:
    """A column read from the rows WITHOUT DP (``provenance: drafted``)."""
    present = values.dropna()
    kind = column_kind(values)
    if kind == "empty":
        return empty_categorical("drafted")
    if kind == "boolean":
        return {"type": "boolean", "nullable": True, "provenance": "drafted"}
    if kind == "numerical":
        x = read.numerical(present).values.to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return empty_categorical("drafted")
        integer = bool(np.all(np.mod(finite, 1) == 0))
        lower, upper = round_outward(float(finite.min()), float(finite.max()), integer=integer)
        return numerical_column(lower, upper, integer=integer, provenance="drafted")
    if kind == "datetime":
        dates = _as_dates(present)
        assert dates is not None  # column_kind saw dates
        first, last = _round_dates(dates.min(), dates.max())
        return {
            "type": "datetime",
            "nullable": True,
            "lower": first.isoformat(),
            "upper": last.isoformat(),
            "provenance": "drafted",
        }
    counts = read.categorical(present).values.value_counts()
    kept = sorted(str(c) for c, n in counts.items() if n >= k)
    return {
        "type": "categorical",
        "nullable": True,
        "categories": kept,
        "other": other_label(kept),
        "provenance": "drafted",
    }
