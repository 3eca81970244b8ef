"""Marginal utility on the public, discretised domain: pure functions on integer codes.

Nothing here reads a :class:`~synthrelease.private.table.SensitiveTable`; the one call
site that feeds real codes in is ``validators/real.py``. Error messages name columns,
never values.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Above this many cells a marginal is counted sparsely (np.unique) instead of densely.
DENSE_CELL_LIMIT = 1 << 22

Workload = Iterable[Sequence[str]]


def marginal_tvd(
    a_codes: pd.DataFrame,
    b_codes: pd.DataFrame,
    sizes: Mapping[str, int],
    *,
    way: int,
    workload: Workload | None = None,
) -> float:
    """Mean total-variation distance between the ``way``-way marginals of two tables.

    ``a_codes`` and ``b_codes`` hold integer codes ``0..sizes[col]-1`` (see
    ``Discretiser.encode``). The marginals are every ``way``-subset of ``sizes``' columns,
    or the given ``workload`` (column tuples of length ``way``). Each marginal's TVD is
    ``0.5 * sum |p - q|`` of the two normalised histograms, so the result is in [0, 1]:
    0 for identical distributions, 1 for disjoint supports.
    """
    marginals = _workload(sizes, way=way, workload=workload)
    a = _as_code_matrix(a_codes, sizes, what="first table")
    b = _as_code_matrix(b_codes, sizes, what="second table")
    position = {name: i for i, name in enumerate(sizes)}
    tvds = np.empty(len(marginals), dtype=float)
    for k, cols in enumerate(marginals):
        idx = [position[c] for c in cols]
        dims = tuple(int(sizes[c]) for c in cols)
        tvds[k] = _tvd(_flat_index(a, idx, dims), _flat_index(b, idx, dims), dims)
    logger.debug("marginal_tvd: %d %d-way marginals", len(marginals), way)
    return float(tvds.mean())


def _workload(
    sizes: Mapping[str, int], *, way: int, workload: Workload | None
) -> list[tuple[str, ...]]:
    if not sizes:
        raise ValueError("sizes is empty: no columns to compare")
    for name, size in sizes.items():
        if int(size) < 1:
            raise ValueError(f"column {name!r}: domain size must be at least 1")
    if isinstance(way, bool) or not isinstance(way, (int, np.integer)) or way < 1:
        raise ValueError("way must be a positive integer")
    if workload is None:
        if way > len(sizes):
            raise ValueError(f"way={way} is larger than the number of columns")
        return list(itertools.combinations(sizes, way))
    marginals = [tuple(str(c) for c in cols) for cols in workload]
    if not marginals:
        raise ValueError("workload is empty")
    for cols in marginals:
        if len(cols) != way or len(set(cols)) != way:
            raise ValueError(f"workload entry {cols!r} is not {way} distinct columns")
        missing = [c for c in cols if c not in sizes]
        if missing:
            raise ValueError(f"workload names columns without a domain size: {missing!r}")
    return marginals


def _as_code_matrix(codes: pd.DataFrame, sizes: Mapping[str, int], *, what: str) -> np.ndarray:
    if not isinstance(codes, pd.DataFrame):
        raise TypeError(f"{what}: expected a DataFrame of integer codes")
    missing = [c for c in sizes if c not in codes.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing!r}")
    if len(codes) == 0:
        raise ValueError(f"{what}: has no rows")
    matrix = np.empty((len(codes), len(sizes)), dtype=np.int64)
    for j, name in enumerate(sizes):
        col = codes[name]
        if not pd.api.types.is_integer_dtype(col.dtype) or col.isna().any():
            raise ValueError(f"{what}: column {name!r} is not integer codes")
        values = col.to_numpy(dtype=np.int64)
        if values.min() < 0 or values.max() >= int(sizes[name]):
            raise ValueError(f"{what}: column {name!r} has codes outside its domain size")
        matrix[:, j] = values
    return matrix


def _flat_index(matrix: np.ndarray, idx: list[int], dims: tuple[int, ...]) -> np.ndarray:
    if len(idx) == 1:
        return matrix[:, idx[0]]
    return np.ravel_multi_index(tuple(matrix[:, i] for i in idx), dims)


def _tvd(a_cells: np.ndarray, b_cells: np.ndarray, dims: tuple[int, ...]) -> float:
    cells = int(np.prod(dims, dtype=np.float64))
    if cells <= DENSE_CELL_LIMIT:
        p = np.bincount(a_cells, minlength=cells)
        q = np.bincount(b_cells, minlength=cells)
    else:  # sparse: count only the cells that occur in either table
        _, inverse = np.unique(np.concatenate([a_cells, b_cells]), return_inverse=True)
        inverse = inverse.reshape(-1)
        width = int(inverse.max()) + 1
        p = np.bincount(inverse[: len(a_cells)], minlength=width)
        q = np.bincount(inverse[len(a_cells) :], minlength=width)
    return 0.5 * float(np.abs(p / len(a_cells) - q / len(b_cells)).sum())


def sampled_workload(
    sizes: Mapping[str, int], *, way: int, max_marginals: int, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Every ``way``-subset of the columns, or ``max_marginals`` of them drawn at random
    (without repeats) when there are more: bounds the work on wide tables."""
    names = list(sizes)
    if not 1 <= way <= len(names):
        raise ValueError("way must be between 1 and the number of columns")
    if max_marginals < 1:
        raise ValueError("max_marginals must be positive")
    total = math.comb(len(names), way)
    if total <= max_marginals:
        return list(itertools.combinations(names, way))
    if total <= 4 * max_marginals:
        every = list(itertools.combinations(names, way))
        keep = np.sort(rng.choice(total, size=max_marginals, replace=False))
        return [every[i] for i in keep]
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_marginals:
        chosen.add(tuple(sorted(int(i) for i in rng.choice(len(names), size=way, replace=False))))
    return [tuple(names[i] for i in combo) for combo in sorted(chosen)]
