"""Mixed-type tables as one float matrix for distance-based checks (Gower-style).

Pure functions on plain frames; nothing here reads a ``SensitiveTable`` (the call site
that feeds real rows in is ``validators/real.py``). Scaling uses the *declared* bounds
only, so the encoding itself learns nothing from the rows.

Each declared column becomes one matrix column:

- numerical / datetime: ``(x - lower) / (upper - lower)`` clipped to [0, 1]; null (or a
  value that is not a number) is :data:`NULL_NUMERIC`, so that with the per-column
  distance ``min(|a - b|, 1)`` a null is at distance 1 from every value and 0 from a null;
- categorical: the index of the declared label (an unknown value maps to the ``other``
  bucket when declared, else to one extra "unknown" code); null is ``-1``;
- boolean: 0 / 1, null ``-1``.

The distance between two rows is the mean over columns of the per-column distance
(categorical: 0 if equal, else 1), so it lies in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.values import boolean

NULL_NUMERIC = 3.0
NULL_CODE = -1.0


@dataclass(frozen=True)
class MixedMatrix:
    """Encoded rows: ``values`` (n, d) float64; ``categorical[j]`` says how column j compares."""

    values: np.ndarray
    categorical: np.ndarray  # bool (d,)
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ValueError("values must be a 2-d array with one column per name")
        if self.categorical.shape != (len(self.names),):
            raise ValueError("categorical must hold one flag per column")

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def take(self, index: np.ndarray) -> MixedMatrix:
        return MixedMatrix(self.values[np.asarray(index)], self.categorical, self.names)

    def columns(self, names: Sequence[str]) -> list[int]:
        position = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in position]
        if missing:
            raise ValueError(f"unknown columns {missing!r}")
        return [position[n] for n in names]


def encode_mixed(frame: pd.DataFrame, specs: Mapping[str, object]) -> MixedMatrix:
    """Encode the declared columns of ``frame`` (see the module docstring)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("expected a DataFrame")
    missing = [c for c in specs if c not in frame.columns]
    if missing:
        raise ValueError(f"table lacks declared columns {missing!r}")
    if not specs:
        raise ValueError("no declared columns")
    values = np.empty((len(frame), len(specs)), dtype=np.float64)
    flags = np.zeros(len(specs), dtype=bool)
    for j, (name, spec) in enumerate(specs.items()):
        values[:, j], flags[j] = _encode_column(frame[name], spec)
    return MixedMatrix(values, flags, tuple(str(n) for n in specs))


def _encode_column(values: pd.Series, spec: object) -> tuple[np.ndarray, bool]:
    null = values.isna().to_numpy()
    if isinstance(spec, CategoricalColumn):
        labels = pd.Index(spec.categories)
        idx = labels.get_indexer(values.astype(object).where(~null, None).astype(str))
        idx = idx.astype(np.float64)
        idx[idx < 0] = float(len(labels))  # the 'other' bucket, or the unknown code
        idx[null] = NULL_CODE
        return idx, True
    if isinstance(spec, BooleanColumn):
        # the accepted spellings: synthrelease.values; 2: not a boolean
        out = boolean(values).values.to_numpy(dtype=np.float64, na_value=2.0)
        out[null] = NULL_CODE
        return out, True
    if isinstance(spec, DatetimeColumn):
        stamps = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        ns = stamps.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64)
        x = ns.astype(np.float64)
        x[stamps.isna().to_numpy()] = np.nan
        # Timestamp.value is UTC nanoseconds (naive bounds are read as UTC)
        lo, hi = float(pd.Timestamp(spec.lower).value), float(pd.Timestamp(spec.upper).value)
        return _scaled(x, lo, hi), False
    if isinstance(spec, NumericalColumn):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        assert spec.lower is not None and spec.upper is not None  # resolved columns only
        return _scaled(x, float(spec.lower), float(spec.upper)), False
    raise TypeError(f"unsupported column type {type(spec).__name__}")


def _scaled(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        out = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    out[~np.isfinite(x)] = NULL_NUMERIC
    return out
