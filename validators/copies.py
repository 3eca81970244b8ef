"""Exact copies: rows hashed over the declared columns after per-type normalisation.

Numbers as float64, categories as declared labels with unknown values in the ``other``
bucket, booleans as 0/1, datetimes as naive UTC nanoseconds, one token for null. Pure
functions: ``validators/real.py`` feeds the real rows in.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn

_TRUE = {"true", "1", "yes", "t", "y", "1.0"}
_FALSE = {"false", "0", "no", "f", "n", "0.0"}
_NULL_LABEL = "\x00null"


def share_in(rows: np.ndarray, reference: np.ndarray) -> float:
    return float(np.isin(rows, reference).mean())


def row_hashes(frame: pd.DataFrame, specs: Mapping[str, object]) -> np.ndarray:
    """One uint64 per row over the normalised declared columns."""
    normal = pd.DataFrame(
        {name: _normalised(frame[name], spec) for name, spec in specs.items()},
        index=pd.RangeIndex(len(frame)),
    )
    return pd.util.hash_pandas_object(normal, index=False).to_numpy()


def _normalised(values: pd.Series, spec: object) -> np.ndarray:
    null = values.isna().to_numpy()
    if isinstance(spec, CategoricalColumn):
        text = values.astype(object).where(~null, None).map(
            lambda v: _NULL_LABEL if v is None else str(v)
        )
        if spec.other is not None:
            known = text.isin(spec.categories) | (text == _NULL_LABEL)
            text = text.where(known, spec.other)
        return text.to_numpy(dtype=object)
    if isinstance(spec, BooleanColumn):
        out = np.full(len(values), -2, dtype=np.int64)  # -2: not a boolean
        text = values.astype(object).map(lambda v: str(v).strip().lower())
        out[text.isin(_TRUE).to_numpy()] = 1
        out[text.isin(_FALSE).to_numpy()] = 0
        out[null] = -1
        return out
    if isinstance(spec, DatetimeColumn):
        stamps = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        ns = stamps.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64)
        return np.where(stamps.isna().to_numpy(), np.iinfo(np.int64).min, ns)
    if isinstance(spec, NumericalColumn):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return x + 0.0  # -0.0 -> 0.0; NaN (null or non-number) hashes alike
    raise TypeError(f"unsupported column type {type(spec).__name__}")
