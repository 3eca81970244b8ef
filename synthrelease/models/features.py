"""Model inputs from a table, per declared column type (shared by training, evaluation
and consumers, so that a published model sees the same encoding everywhere).

Each feature becomes one named ONNX input of shape ``[n, 1]``: ``float`` (float32, NaN
for null) for numerical, boolean (0/1) and datetime (days since 1970-01-01 UTC) columns;
``string`` for categorical columns (null as ``""``, undeclared values as the declared
``other`` label where there is one). Values are read by :mod:`synthrelease.values`, as
the domain check and the copy checks read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import ModelError
from synthrelease.spec import (
    BooleanColumn,
    CategoricalColumn,
    DatetimeColumn,
    DownstreamModel,
    NumericalColumn,
)
from synthrelease.values import boolean, categorical, datetime, numerical

NULL_LABEL = ""
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # numerical | boolean | datetime | categorical
    categories: tuple[str, ...] = ()
    other: str | None = None

    @property
    def input_type(self) -> str:
        return "string" if self.type == "categorical" else "float"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "input": self.input_type,
            "categories": list(self.categories),
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Feature:
        return cls(
            name=str(raw["name"]),
            type=str(raw["type"]),
            categories=tuple(raw.get("categories") or ()),
            other=raw.get("other"),
        )


def feature_of(name: str, column: object) -> Feature:
    if isinstance(column, CategoricalColumn):
        assert column.categories is not None  # resolved columns only
        return Feature(name, "categorical", column.categories, column.other)
    if isinstance(column, BooleanColumn):
        return Feature(name, "boolean")
    if isinstance(column, DatetimeColumn):
        return Feature(name, "datetime")
    if isinstance(column, NumericalColumn):
        return Feature(name, "numerical")
    raise ModelError(f"column {name!r}: unsupported type for a model input")


def features_for(model: DownstreamModel, columns: Mapping[str, object]) -> tuple[Feature, ...]:
    names = model.features or tuple(c for c in columns if c != model.target)
    return tuple(feature_of(n, columns[n]) for n in names)


def _bool_floats(values: pd.Series) -> np.ndarray:
    """1.0 / 0.0 by the accepted boolean spellings; NaN for null or unreadable."""
    return boolean(values).values.to_numpy(dtype=np.float32, na_value=np.nan)


def _datetime_days(values: pd.Series) -> np.ndarray:
    stamps = datetime(values).values
    ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    ns[stamps.isna().to_numpy()] = np.nan
    return (ns / _NS_PER_DAY).astype(np.float32)


def _labels(values: pd.Series, feature: Feature) -> np.ndarray:
    """Labels as read by :func:`synthrelease.values.categorical`; null (and the empty
    text, which is how null is fed) as ``NULL_LABEL``. Undeclared values map to ``other``
    only where the feature declares both a bucket and a non-empty category set."""
    values = values.mask(
        values.astype(object).map(lambda v: isinstance(v, str) and v == NULL_LABEL)
    )
    mapped = feature.other is not None and bool(feature.categories)
    text = categorical(
        values, categories=tuple(feature.categories) if mapped else None, other=feature.other
    ).values
    return text.where(text.notna(), NULL_LABEL).to_numpy(dtype=object)


def encode_column(values: pd.Series, feature: Feature) -> np.ndarray:
    """One feature as an ``[n, 1]`` array of its input type."""
    if feature.type == "categorical":
        return _labels(values, feature).reshape(-1, 1)
    if feature.type == "boolean":
        arr = _bool_floats(values)
    elif feature.type == "datetime":
        arr = _datetime_days(values)
    else:
        arr = numerical(values).values.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = arr.astype(np.float32)
    return arr.reshape(-1, 1)


def encode_inputs(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, np.ndarray]:
    """The ONNX feed for ``frame`` (named inputs, one per feature)."""
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise ModelError(f"the table lacks model input columns {missing!r}")
    return {f.name: encode_column(frame[f.name], f) for f in features}


def as_frame(inputs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Encoded inputs as a frame (what the scikit-learn pipeline is fitted on)."""
    return pd.DataFrame({name: arr[:, 0] for name, arr in inputs.items()})


def encode_target(values: pd.Series, kind: str, target: Feature) -> tuple[np.ndarray, np.ndarray]:
    """(labels or floats, mask of rows with a target): rows without one are not used."""
    if kind == "classifier":
        if target.type == "boolean":
            f = _bool_floats(values)
            mask = ~np.isnan(f)
            return np.where(f[mask] > 0.5, "true", "false").astype(object), mask
        mask = values.notna().to_numpy()
        return _labels(values[mask], target), mask
    y = encode_column(values, target)[:, 0].astype(np.float64)
    mask = ~np.isnan(y)
    return y[mask], mask
