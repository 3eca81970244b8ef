"""``spec draft``: a column's type and its plain (NOT DP) domain, read from the rows.

Pure functions on a column of the table ``synthrelease/private/draft.py`` reads. The
*kind* (:func:`column_kind`) comes from the dtype, plus true/false text
(:data:`synthrelease.values.BOOLEAN_WORDS`) and ISO dates; :func:`draft_column` then
refines it from the column's exact distinct values (NOT DP, like its bounds): two
values 0/1 or one true and one false spelling make a boolean, a few whole numbers in a
narrow span (or one value) a categorical of their integer text. Values are read by
:mod:`synthrelease.values`. Bounds are rounded outward, never to the exact minimum or
maximum; categories seen in fewer than ``k`` rows go to the ``other`` bucket, except in
the target, which has no bucket (see the module docstring of ``draft.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from synthrelease import values as read
from synthrelease.errors import SpecError

OTHER = "other"
# Whole-number columns with at most this many distinct values in a span (max - min) of
# at most SMALL_INT_MAX_SPAN are drafted categorical: a code per value, and a class per
# value where the column is the target (Likert scales, counts of children, grades). 20
# values and a span of 40 keep every such column within AIM/MST's domain sizes; a wider
# column stays numerical (binned; integer columns of small span still get one code per
# integer, generators/domain.py).
SMALL_INT_MAX_DISTINCT = 20
SMALL_INT_MAX_SPAN = 40
_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")


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


def is_integer_text(label: str) -> bool:
    """True for the canonical text of a whole number (``"3"``, ``"-12"``; not ``"03"``,
    ``"3.0"`` or ``"+3"``): what :func:`synthrelease.values.label` writes."""
    return _INTEGER_TEXT.fullmatch(label) is not None


def two_valued_boolean(labels: Iterable[str]) -> bool:
    """Exactly two spellings (once stripped and lower-cased), one of TRUE_TEXT and one of
    FALSE_TEXT: yes/no, y/n, true/false, t/f, 1/0."""
    words = {str(v).strip().lower() for v in labels}
    return (
        len(words) == 2 and len(words & read.TRUE_TEXT) == 1 and len(words & read.FALSE_TEXT) == 1
    )


def small_integers(labels: Iterable[str]) -> bool:
    """Labels that are all integer text, at most SMALL_INT_MAX_DISTINCT of them, in a span
    of at most SMALL_INT_MAX_SPAN (one label: always)."""
    labels = list(labels)
    if not labels or not all(is_integer_text(v) for v in labels):
        return False
    ints = [int(v) for v in labels]
    return len(set(ints)) <= SMALL_INT_MAX_DISTINCT and max(ints) - min(ints) <= SMALL_INT_MAX_SPAN


def boolean_column(provenance: str) -> dict[str, Any]:
    return {"type": "boolean", "nullable": True, "provenance": provenance}


def categorical_column(
    kept: Iterable[str], *, bucket: bool, numeric: bool, provenance: str
) -> dict[str, Any]:
    """A drafted categorical column: ``kept`` sorted (numerically where ``numeric``), with
    an ``other`` bucket unless ``bucket`` is false (the target: its rows outside ``kept``
    are then dropped by the column's default out-of-domain rule)."""
    labels = sorted(kept, key=lambda v: (int(v), v) if numeric else (0, v))
    col: dict[str, Any] = {"type": "categorical", "nullable": True, "categories": labels}
    if bucket:
        col["other"] = other_label(labels)
    col["provenance"] = provenance
    return col


def no_target_classes(name: object) -> SpecError:
    """The target kept no value: names the column (public: the header), never a value."""
    return SpecError(
        f"--target {str(name)!r}: no value of the column is common enough to be a class of "
        "the target; draft without --target, or declare its categories by hand"
    )


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
def _release_labels(present: pd.Series, text: pd.Series | None) -> pd.Series | None:
    """The category labels of the present values of a numeric column (``3.0`` as
    ``"3"``), or None where the release would read other labels: ``text`` is the column
    as the release reads a categorical column (``private/sources.load_table``: the CSV's
    own text), which must then be the same label on every row (``"3.0"`` or ``"03"`` in
    the file is not)."""
    labels = read.categorical(present).values
    if text is None:
        return labels
    same = text.reindex(present.index).astype(object) == labels
    return labels if bool(same.all()) else None


def _plain_categorical(
    counts: pd.Series, *, k: int, target: bool, numeric: bool, name: object
) -> dict[str, Any]:
    kept = [str(c) for c, n in counts.items() if n >= k]
    if target and not kept:
        raise no_target_classes(name)
    return categorical_column(kept, bucket=not target, numeric=numeric, provenance="drafted")


def draft_column(
    values: pd.Series, *, k: int, target: bool = False, text: pd.Series | None = None
) -> dict[str, Any]:
    """A column read from the rows WITHOUT DP (``provenance: drafted``).

    Reads the column's dtype, its exact distinct values (for the type: 0/1, two boolean
    words, few whole numbers or one value), their counts (the ``k`` rule) and extremes
    (the bounds). ``target``: the column is the spec's target (no ``other`` bucket; a
    label seen in fewer than ``k`` rows is left out and its rows are dropped at release).
    ``text``: a numeric column as the release reads it as a category (see
    :func:`_release_labels`); None reads the values' own labels. Errors name the column,
    never a value.
    """
    present = values.dropna()
    kind = column_kind(values)
    if kind == "empty":
        if target:
            raise no_target_classes(values.name)
        return empty_categorical("drafted")
    if kind == "boolean":
        return boolean_column("drafted")
    if kind == "numerical":
        x = read.numerical(present).values.to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            if target:
                raise no_target_classes(values.name)
            return empty_categorical("drafted")
        distinct = np.unique(finite)
        if finite.size == x.size and set(distinct.tolist()) == {0.0, 1.0}:
            as_read = None if text is None else text.reindex(present.index)
            if as_read is None or not read.boolean(as_read).bad.any():
                return boolean_column("drafted")
        integral = bool(np.all(np.mod(finite, 1) == 0))
        few = distinct.size <= SMALL_INT_MAX_DISTINCT and (
            float(distinct[-1] - distinct[0]) <= SMALL_INT_MAX_SPAN
        )
        if finite.size == x.size and (distinct.size == 1 or (integral and few)):
            labels = _release_labels(present, text)
            if labels is not None:
                return _plain_categorical(
                    labels.value_counts(),
                    k=k,
                    target=target,
                    numeric=integral,
                    name=values.name,
                )
        lower, upper = round_outward(float(finite.min()), float(finite.max()), integer=integral)
        return numerical_column(lower, upper, integer=integral, provenance="drafted")
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
    if two_valued_boolean(counts.index):
        return boolean_column("drafted")
    return _plain_categorical(counts, k=k, target=target, numeric=False, name=values.name)
