"""Data for the report's plots: 1-way distributions and pairwise associations.

Both work on the public discretised domain (``generators.domain.Discretiser`` codes), so
bin labels are declared labels or bin edges from declared bounds, never observed values.
Association is Cramér's V of the two columns' codes (0: independent, 1: one determines
the other), which treats every column type alike. Pure functions on codes.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn


def bin_labels(spec: object, bins: int, nullable: bool) -> list[str]:
    """A label per code of a column coder: declared labels, or declared bin edges."""
    if isinstance(spec, CategoricalColumn):
        labels = list(spec.labels)
    elif isinstance(spec, BooleanColumn):
        labels = ["False", "True"]
    elif isinstance(spec, NumericalColumn):
        assert spec.lower is not None and spec.upper is not None  # resolved columns only
        lo, hi = float(spec.lower), float(spec.upper)
        if spec.integer and lo.is_integer() and int(np.floor(hi) - lo + 1) == bins:
            labels = [str(int(lo) + k) for k in range(bins)]
        else:
            edges = np.linspace(lo, hi, bins + 1)
            labels = [f"{edges[k]:.4g}–{edges[k + 1]:.4g}" for k in range(bins)]
    elif isinstance(spec, DatetimeColumn):
        lo, hi = pd.Timestamp(spec.lower).value, pd.Timestamp(spec.upper).value
        edges = np.linspace(lo, hi, bins + 1)
        labels = [_date(edges[k]) for k in range(bins)]
    else:
        raise TypeError(f"unsupported column type {type(spec).__name__}")
    return labels + (["null"] if nullable else [])


def _date(ns: float) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d")


def distributions(
    *, real_codes: pd.DataFrame, synthetic_codes: pd.DataFrame, coders: Mapping[str, Any]
) -> dict[str, Any]:
    """Per column: labels and the share of rows per code in each table."""
    out: dict[str, Any] = {}
    for name, coder in coders.items():
        size = int(coder.size)
        out[name] = {
            "labels": bin_labels(coder.spec, int(coder.bins), bool(coder.nullable)),
            "real": _shares(real_codes[name], size),
            "synthetic": _shares(synthetic_codes[name], size),
        }
    return out


def _shares(codes: pd.Series, size: int) -> list[float]:
    counts = np.bincount(codes.to_numpy(dtype=np.int64), minlength=size)[:size]
    return (counts / max(1, counts.sum())).round(6).tolist()


def association_matrix(codes: pd.DataFrame, sizes: Mapping[str, int]) -> list[list[float]]:
    """Cramér's V between every pair of columns (1 on the diagonal)."""
    names = list(sizes)
    d = len(names)
    matrix = np.eye(d)
    arrays = {n: codes[n].to_numpy(dtype=np.int64) for n in names}
    for i, j in itertools.combinations(range(d), 2):
        v = cramers_v(arrays[names[i]], arrays[names[j]], sizes[names[i]], sizes[names[j]])
        matrix[i, j] = matrix[j, i] = v
    return matrix.round(4).tolist()


def cramers_v(a: np.ndarray, b: np.ndarray, size_a: int, size_b: int) -> float:
    n = len(a)
    if n == 0:
        raise ValueError("no rows")
    table = np.bincount(a * size_b + b, minlength=size_a * size_b).reshape(size_a, size_b)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    k = min(table.shape) - 1
    if k < 1:
        return 0.0  # a constant column is independent of everything
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * k)))


def association_gap(real: list[list[float]], synthetic: list[list[float]]) -> float:
    """Mean absolute difference of the off-diagonal associations (report only)."""
    a, b = np.asarray(real), np.asarray(synthetic)
    if a.shape[0] < 2:
        return 0.0
    mask = ~np.eye(a.shape[0], dtype=bool)
    return float(np.abs(a - b)[mask].mean())
