"""Data for the report's plots: 1-way distributions and pairwise associations.

Both work on the public discretised domain (``generators.domain.Discretiser`` codes), so
bin labels are declared labels or bin edges from declared bounds, never observed values.
Association is Cramér's V of the two columns' codes (0: independent, 1: one determines
the other), which treats every column type alike. Per-column and per-pair TVDs, and the
joint shares of a pair, break the marginal figures down for the report's per-pair view.
Pure functions on codes.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.validators.utility import DENSE_CELL_LIMIT


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


def column_tvds(
    real_codes: pd.DataFrame, synthetic_codes: pd.DataFrame, sizes: Mapping[str, int]
) -> dict[str, float]:
    """Per column, the TVD of its 1-way marginal (their mean is ``tvd_1way`` on the same
    rows)."""
    return {
        name: _tvd(
            real_codes[name].to_numpy(np.int64), synthetic_codes[name].to_numpy(np.int64), int(size)
        )
        for name, size in sizes.items()
    }


def pair_tvds(
    real_codes: pd.DataFrame,
    synthetic_codes: pd.DataFrame,
    sizes: Mapping[str, int],
    pairs: Sequence[tuple[str, ...]],
) -> list[tuple[str, str, float]]:
    """Per pair of columns, the TVD of its 2-way marginal, worst first (their mean is the
    2-way TVD of ``utility.marginal_tvd`` over the same pairs and rows)."""
    out = []
    for a, b in pairs:
        size = int(sizes[a]) * int(sizes[b])
        real = _pair_cells(real_codes, a, b, sizes)
        synthetic = _pair_cells(synthetic_codes, a, b, sizes)
        out.append((a, b, _tvd(real, synthetic, size)))
    return sorted(out, key=lambda t: -t[2])


def pair_table(
    *,
    real_codes: pd.DataFrame,
    synthetic_codes: pd.DataFrame,
    coders: Mapping[str, Any],
    pair: tuple[str, str],
    max_labels: int = 12,
) -> dict[str, Any]:
    """The joint shares of two columns in each table, for a side-by-side heat map.

    Each axis keeps at most ``max_labels`` labels (those with the largest share in the
    two tables together, in code order); ``hidden`` counts the labels left out per axis
    (shares stay shares of all rows). Memory is bounded by ``max_labels`` squared."""
    keep = {}
    for name in pair:
        size = int(coders[name].size)
        both = sum(
            np.bincount(c[name].to_numpy(np.int64), minlength=size) / max(1, len(c))
            for c in (real_codes, synthetic_codes)
        )
        keep[name] = np.sort(np.argsort(-both, kind="stable")[:max_labels])
    a, b = pair
    tables = {}
    for key, codes in (("real", real_codes), ("synthetic", synthetic_codes)):
        cells = []
        for name in pair:  # position among the kept labels, -1 for a hidden label
            position = np.full(int(coders[name].size), -1)
            position[keep[name]] = np.arange(len(keep[name]))
            cells.append(position[codes[name].to_numpy(np.int64)])
        shown = (cells[0] >= 0) & (cells[1] >= 0)
        flat = cells[0][shown] * len(keep[b]) + cells[1][shown]
        counts = np.bincount(flat, minlength=len(keep[a]) * len(keep[b]))
        tables[key] = (counts / max(1, len(codes))).reshape(len(keep[a]), len(keep[b]))
    labels = {
        n: bin_labels(coders[n].spec, int(coders[n].bins), bool(coders[n].nullable)) for n in pair
    }
    return {
        "columns": [a, b],
        "rows": [labels[a][i] for i in keep[a]],
        "cols": [labels[b][j] for j in keep[b]],
        "real": tables["real"].round(6).tolist(),
        "synthetic": tables["synthetic"].round(6).tolist(),
        "hidden": [int(coders[n].size) - len(keep[n]) for n in pair],
    }


def _pair_cells(codes: pd.DataFrame, a: str, b: str, sizes: Mapping[str, int]) -> np.ndarray:
    return codes[a].to_numpy(np.int64) * int(sizes[b]) + codes[b].to_numpy(np.int64)


def _tvd(a: np.ndarray, b: np.ndarray, size: int) -> float:
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no rows")
    if size > DENSE_CELL_LIMIT:  # count only the cells that occur, as utility.py does
        _, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        a, b, size = inverse[: len(a)], inverse[len(a) :], int(inverse.max()) + 1
    p = np.bincount(a, minlength=size) / len(a)
    q = np.bincount(b, minlength=size) / len(b)
    return 0.5 * float(np.abs(p - q).sum())
