"""One reading of a raw value per declared column type (base layer).

Every place that reads a table's values by their declared type goes through here: the
domain check and its enforcement (``private/sources.py``), both copy checks (the gate's
``validators/copies.py`` and the firewall's ``private/rowscan.py``), the downstream model
features (``models/features.py``) and spec drafting (``private/draft*.py``). Two readings
that disagree on a value make the gate and the firewall disagree on what a copied row
is, so there is one.

A normaliser takes a pandas Series of raw values and returns a :class:`Normalised`:
canonical values (index kept) and three masks that never overlap:

- ``null``: no value (None, NaN, NaT, pd.NA);
- ``unreadable``: a value that is not one of the type (text that is not a number, a
  date or a boolean spelling; a date beyond pandas' range); its canonical value is
  missing;
- ``outside``: readable, but outside the declared domain (a number or date beyond the
  bounds, a category outside the set). Its canonical value is the value read (bounds
  are *not* applied: clipping is a policy of the domain enforcement), except that a
  column declaring an ``other`` bucket reads an unknown category as that bucket.

Canonical values: numbers as float64 (``3``, ``"3"``, ``" 3 "`` and ``3.0`` alike;
``-0.0`` as ``0.0``; infinities are readable and outside every declared bound);
booleans as pandas' nullable ``boolean`` (a bool, or text that is, once stripped and
lower-cased, one of :data:`TRUE_TEXT` / :data:`FALSE_TEXT`); datetimes as naive UTC
``datetime64[ns]`` (naive text read as UTC, aware values converted); categories as the
``str`` of the value, exactly (no stripping, no case folding), except that a number with
an integral value reads as its integer text (``3`` and ``3.0`` both as ``"3"``; text is
never rewritten), so a column of whole numbers reads the same with nulls (pandas: float)
and without (int).

:func:`row_keys` is the one definition of "the same row" for copy detection: rows are
equal when every declared column holds the same canonical value, or both hold null, or
both hold an unreadable value with the same raw text. An unreadable value never equals
a readable one or a null (it is keyed apart, by its raw text), so a garbled value can
neither hide a copy nor make one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthrelease.spec import (
    BooleanColumn,
    CategoricalColumn,
    DatetimeColumn,
    NumericalColumn,
)

# The accepted boolean spellings (after strip + lower-case), defined once.
TRUE_TEXT = frozenset({"true", "1", "yes", "t", "y", "1.0"})
FALSE_TEXT = frozenset({"false", "0", "no", "f", "n", "0.0"})
# The spellings that make ``spec draft`` infer a boolean column from text even when only
# one of them occurs (a column holding exactly two values, one of TRUE_TEXT and one of
# FALSE_TEXT, such as yes/no or 0/1, is drafted boolean as well: see private/draft.py).
BOOLEAN_WORDS = frozenset({"true", "false"})

# Tags, in a key column of their own (so no label can collide with them). No NUL
# character: pandas hashes text up to the first NUL.
_NULL_KEY = "null"
_UNREADABLE_KEY = "unreadable:"


@dataclass(frozen=True, eq=False)
class Normalised:
    """Canonical values of one column and which raw values could not be taken as read."""

    values: pd.Series  # canonical, the input's index; missing where null or unreadable
    null: np.ndarray  # bool: no value
    unreadable: np.ndarray  # bool: present, but not a value of the declared type
    outside: np.ndarray  # bool: readable, outside the declared domain

    @property
    def bad(self) -> np.ndarray:
        """Present values that break the declared domain (unreadable or outside)."""
        return self.unreadable | self.outside

    @property
    def readable(self) -> np.ndarray:
        """Values that were read (in the domain or not)."""
        return ~(self.null | self.unreadable)


def _nulls(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy(dtype=bool)


def _none(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def numerical(
    values: pd.Series, *, lower: float | None = None, upper: float | None = None
) -> Normalised:
    """Numbers as float64; ``outside`` against the bounds given (none: no domain)."""
    null = _nulls(values)
    x = pd.to_numeric(values, errors="coerce").astype(np.float64) + 0.0  # -0.0 -> 0.0
    x.index = values.index
    unreadable = ~null & x.isna().to_numpy()
    outside = _none(len(values))
    if lower is not None:
        outside |= (x < lower).to_numpy()
    if upper is not None:
        outside |= (x > upper).to_numpy()
    return Normalised(x, null, unreadable, outside & ~null & ~unreadable)


def boolean(values: pd.Series) -> Normalised:
    """Booleans: a bool, or one of the accepted spellings (case and spaces ignored)."""
    null = _nulls(values)
    if values.dtype == bool or str(values.dtype) == "boolean":
        out = values.astype("boolean")
        return Normalised(out, null, _none(len(values)), _none(len(values)))
    text = values.astype(object).map(lambda v: str(v).strip().lower()).to_numpy(dtype=object)
    is_true = np.isin(text, list(TRUE_TEXT)) & ~null
    is_false = np.isin(text, list(FALSE_TEXT)) & ~null
    out = pd.Series(pd.array([pd.NA] * len(values), dtype="boolean"), index=values.index)
    out[is_true] = True
    out[is_false] = False
    unreadable = ~null & ~is_true & ~is_false
    return Normalised(out, null, unreadable, _none(len(values)))


def utc_bound(value: dt.datetime) -> pd.Timestamp:
    """A declared date bound as a naive UTC timestamp (a naive bound is read as UTC)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def datetime(
    values: pd.Series, *, lower: dt.datetime | None = None, upper: dt.datetime | None = None
) -> Normalised:
    """Naive UTC timestamps; ``outside`` against the bounds given (naive bounds are UTC)."""
    null = _nulls(values)
    stamps = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    stamps = stamps.dt.tz_convert(None).astype("datetime64[ns]")
    stamps.index = values.index
    unreadable = ~null & stamps.isna().to_numpy()
    outside = _none(len(values))
    if lower is not None:
        outside |= (stamps < utc_bound(lower)).to_numpy()
    if upper is not None:
        outside |= (stamps > utc_bound(upper)).to_numpy()
    return Normalised(stamps, null, unreadable, outside & ~null & ~unreadable)


def label(value: object) -> str:
    """The category label of one present value: its ``str``, except a number with an
    integral value, which reads as its integer text (``3.0`` as ``"3"``; ``-0.0`` as
    ``"0"``). Text and booleans are never rewritten."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def categorical(
    values: pd.Series, *, categories: tuple[str, ...] | None = None, other: str | None = None
) -> Normalised:
    """Labels as read by :func:`label`; a value outside ``categories`` is ``outside`` and
    reads as ``other`` where the column declares that bucket (``categories`` None: no
    domain)."""
    raw = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(raw, skipna=True) in ("string", "empty"):
        fast = _categorical_text(raw, values.index, categories, other)
        if fast is not None:
            return fast
    null = _nulls(values)
    text = values.astype(object).where(~null, None)
    if pd.api.types.infer_dtype(text, skipna=True) not in ("string", "empty"):
        text = text.map(lambda v: None if v is None else label(v))  # text reads as itself
    if categories is None:
        return Normalised(text, null, _none(len(values)), _none(len(values)))
    outside = ~null & ~text.isin(categories).to_numpy()
    if other is not None and outside.any():
        text = text.where(~outside, other)
    return Normalised(text, null, _none(len(values)), outside)


def _categorical_text(
    raw: np.ndarray,
    index: pd.Index,
    categories: tuple[str, ...] | None,
    other: str | None,
) -> Normalised | None:
    """:func:`categorical` of text (and nulls), judged once per distinct value: the
    labels are the texts themselves, so the domain is checked on the distinct ones.
    None where pandas' hashing merged distinct texts (it reads text up to a NUL)."""
    codes, uniques = pd.factorize(raw)  # a null (None, NaN, NA) is code -1
    null = codes < 0
    labels = np.empty(len(uniques) + 1, dtype=object)  # the last: a null's
    labels[:-1] = np.asarray(uniques, dtype=object)
    if not (labels[codes] == raw)[~null].all():
        return None
    outside = np.zeros(len(labels), dtype=bool)
    if categories is not None:
        outside[:-1] = ~pd.Index(labels[:-1], dtype=object).isin(categories)
        if other is not None and outside.any():
            labels[outside] = other
    text = pd.Series(labels[codes], index=index, dtype=object)
    return Normalised(text, null, _none(len(raw)), outside[codes])


def normalise(values: pd.Series, column: object) -> Normalised:
    """The normaliser of ``column``'s declared type, with its declared domain."""
    if isinstance(column, CategoricalColumn):
        return categorical(values, categories=column.categories, other=column.other)
    if isinstance(column, BooleanColumn):
        return boolean(values)
    if isinstance(column, DatetimeColumn):
        return datetime(values, lower=column.lower, upper=column.upper)
    if isinstance(column, NumericalColumn):
        return numerical(values, lower=column.lower, upper=column.upper)
    raise TypeError(f"unsupported column type {type(column).__name__}")


# --------------------------------------------------------------------------- copy keys
def _hashable(text: str) -> str:
    """``text`` such that pandas' hash (which stops at a NUL) still tells texts apart:
    marked by whether it holds a NUL, and escaped if it does (an injective map)."""
    if "\x00" not in text:
        return "=" + text
    return "\\" + text.replace("\\", "\\\\").replace("\x00", "\\0")


def _key_columns(
    values: pd.Series, column: object
) -> tuple[np.ndarray | pd.Categorical, pd.Categorical]:
    """(value, tag) arrays that two rows share exactly when the column holds "the same"
    value in both (see the module docstring)."""
    norm = normalise(values, column)
    value: np.ndarray | pd.Categorical
    if isinstance(column, CategoricalColumn):  # each distinct label escaped once
        codes, labels = pd.factorize(norm.values.where(norm.readable, None))
        value = _categories(codes, [_hashable(str(t)) for t in labels], "")
    elif isinstance(column, BooleanColumn):
        value = norm.values.to_numpy(dtype=np.float64, na_value=0.0)
    elif isinstance(column, DatetimeColumn):
        value = norm.values.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
        value[~norm.readable] = 0
    else:
        value = np.where(norm.readable, norm.values.to_numpy(dtype=np.float64), 0.0)
    tags = np.full(len(values), -1, dtype=np.int64)
    names = [_NULL_KEY]
    tags[norm.null] = 0
    if norm.unreadable.any():
        raw = values.to_numpy(dtype=object)[norm.unreadable]
        codes, texts = pd.factorize(
            np.array([_UNREADABLE_KEY + _hashable(str(v)) for v in raw], dtype=object)
        )
        tags[norm.unreadable] = codes + 1
        names += list(texts)
    tag = _categories(tags, names, "")
    return value, tag


def _categories(codes: np.ndarray, labels: list[str], missing: str) -> pd.Categorical:
    """Text ``labels[code]`` per row (``missing`` where the code is -1), as a categorical:
    pandas hashes its labels once, and hashes it as it would the same texts as objects."""
    return pd.Categorical.from_codes(
        np.where(codes < 0, len(labels), codes), categories=[*labels, missing]
    )


def row_keys(frame: pd.DataFrame, columns: Mapping[str, object]) -> np.ndarray:
    """One uint64 per row of ``frame`` over the declared ``columns``: equal for rows that
    copy detection must judge identical (64-bit hashes: a collision is negligible)."""
    parts: dict[int, np.ndarray | pd.Categorical] = {}
    for i, (name, column) in enumerate(columns.items()):
        parts[2 * i], parts[2 * i + 1] = _key_columns(frame[name], column)
    keys = pd.DataFrame(parts, index=pd.RangeIndex(len(frame)))
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()
