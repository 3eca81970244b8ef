"""Typed frames from declared columns, for models and SDMetrics (pure functions).

Every value is normalised by its *declared* type: categories as declared labels (values
outside the set go to the ``other`` bucket when declared, else to null; they must never
surface as labels in a report), booleans as ``"True"``/``"False"`` strings, numbers as
float64, datetimes as naive UTC ``datetime64``; nulls stay nulls. The input frame is
never modified.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.values import boolean, categorical


def typed_frame(frame: pd.DataFrame, specs: Mapping[str, object]) -> pd.DataFrame:
    """The declared columns of ``frame``, normalised (see the module docstring)."""
    missing = [c for c in specs if c not in frame.columns]
    if missing:
        raise ValueError(f"table lacks declared columns {missing!r}")
    return pd.DataFrame(
        {name: typed_column(frame[name], spec) for name, spec in specs.items()},
        index=pd.RangeIndex(len(frame)),
    )


def typed_column(values: pd.Series, spec: object) -> pd.Series:
    values = values.reset_index(drop=True)
    null = values.isna()
    if isinstance(spec, CategoricalColumn):
        text = categorical(values).values  # the one categorical reader: synthrelease.values
        known = text.isin(spec.categories)
        fill = spec.other if spec.other is not None else None
        return text.where(known | null, fill).astype(object)
    if isinstance(spec, BooleanColumn):
        flags = boolean(values).values  # the accepted spellings: synthrelease.values
        return pd.Series([None if pd.isna(f) else str(bool(f)) for f in flags], dtype=object)
    if isinstance(spec, DatetimeColumn):
        stamps = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        return stamps.dt.tz_localize(None).astype("datetime64[ns]")
    if isinstance(spec, NumericalColumn):
        return pd.to_numeric(values, errors="coerce").astype(np.float64)
    raise TypeError(f"unsupported column type {type(spec).__name__}")


def labels_of(spec: object) -> tuple[str, ...]:
    """The declared labels of a categorical or boolean column, in declared order."""
    if isinstance(spec, CategoricalColumn):
        return spec.labels
    if isinstance(spec, BooleanColumn):
        return ("False", "True")
    raise TypeError("only categorical and boolean columns have labels")


def is_discrete(spec: object) -> bool:
    return isinstance(spec, (CategoricalColumn, BooleanColumn))


def model_matrix(typed: pd.DataFrame, specs: Mapping[str, object]) -> pd.DataFrame:
    """Features for a gradient-boosting model: numbers as floats (NaN for null),
    declared categories as pandas categoricals (at most 250 labels, else their codes)."""
    out = {}
    for name, spec in specs.items():
        col = typed[name]
        if is_discrete(spec):
            labels = labels_of(spec)
            cat = pd.Categorical(col, categories=list(labels))
            out[name] = (
                cat
                if len(labels) <= 250
                else pd.Series(cat.codes, dtype=float).where(cat.codes >= 0)
            )
        elif isinstance(spec, DatetimeColumn):
            ns = col.astype("int64").astype(float)
            out[name] = ns.where(col.notna())
        else:
            out[name] = col.astype(float)
    return pd.DataFrame(out, index=typed.index)
