"""Exact nearest neighbours under the mean Gower-style distance of :mod:`.encoding`.

Brute force in query blocks, so memory stays at about ``max_cells`` floats per block
whatever the table sizes, and time is (queries x candidates x columns). Callers bound
both sizes (the validation sample sizes). Ties go to the lowest candidate index:
callers that need random tie-breaking shuffle the candidates first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthrelease.validators.encoding import MixedMatrix

DEFAULT_MAX_CELLS = 2_000_000


def nearest(
    queries: MixedMatrix,
    candidates: MixedMatrix,
    *,
    k: int = 1,
    columns: Sequence[int] | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (ascending) and indices of the ``k`` nearest candidates of each query.

    ``columns`` restricts the distance to those matrix columns (mean over them).
    Returns two arrays of shape (queries.rows, k).
    """
    cols = _check(queries, candidates, columns)
    if not 1 <= k <= candidates.rows:
        raise ValueError("k must be between 1 and the number of candidates")
    qa, ca = _columns(queries, cols), _columns(candidates, cols)
    dist = np.empty((queries.rows, k), dtype=np.float64)
    index = np.empty((queries.rows, k), dtype=np.int64)
    for start, stop in _blocks(queries.rows, candidates.rows, max_cells):
        block = np.zeros((stop - start, candidates.rows), dtype=np.float32)
        for (q, categorical), (c, _) in zip(qa, ca):
            block += _column_distance(q[start:stop], c, categorical)
        if k == 1:
            idx = block.argmin(axis=1)[:, None]
        else:
            part = np.argpartition(block, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
            idx = np.take_along_axis(part, order, axis=1)
        index[start:stop] = idx
        dist[start:stop] = np.take_along_axis(block, idx, axis=1) / len(cols)
    return dist, index


def nearest_leaving_out_each(
    queries: MixedMatrix,
    candidates: MixedMatrix,
    *,
    max_cells: int = DEFAULT_MAX_CELLS // 4,
) -> np.ndarray:
    """Index (queries.rows, d) of the nearest candidate on all columns but column ``j``.

    What an attribute-inference attacker does for each secret column ``j``: match on the
    other columns, read the secret off the match. One pass computes all ``d`` searches.
    """
    cols = _check(queries, candidates, None)
    if len(cols) < 2:
        raise ValueError("leaving one column out needs at least two columns")
    qa, ca = _columns(queries, cols), _columns(candidates, cols)
    index = np.empty((queries.rows, len(cols)), dtype=np.int64)
    for start, stop in _blocks(queries.rows, candidates.rows, max_cells):
        parts = [
            _column_distance(q[start:stop], c, categorical)
            for (q, categorical), (c, _) in zip(qa, ca)
        ]
        total = np.sum(parts, axis=0, dtype=np.float32)
        for j, part in enumerate(parts):
            index[start:stop, j] = (total - part).argmin(axis=1)
    return index


def _check(
    queries: MixedMatrix, candidates: MixedMatrix, columns: Sequence[int] | None
) -> list[int]:
    if not isinstance(queries, MixedMatrix) or not isinstance(candidates, MixedMatrix):
        raise TypeError("queries and candidates must be MixedMatrix")
    if queries.names != candidates.names:
        raise ValueError("queries and candidates must have the same columns")
    if queries.rows == 0 or candidates.rows == 0:
        raise ValueError("queries and candidates must have rows")
    cols = list(range(len(queries.names))) if columns is None else [int(c) for c in columns]
    if not cols or any(not 0 <= c < len(queries.names) for c in cols):
        raise ValueError("columns must be a non-empty list of column positions")
    return cols


def _columns(matrix: MixedMatrix, cols: list[int]) -> list[tuple[np.ndarray, bool]]:
    return [
        (np.ascontiguousarray(matrix.values[:, j], dtype=np.float32), bool(matrix.categorical[j]))
        for j in cols
    ]


def _column_distance(q: np.ndarray, c: np.ndarray, categorical: bool) -> np.ndarray:
    if categorical:
        return np.not_equal.outer(q, c).astype(np.float32)
    out = np.subtract.outer(q, c)
    np.abs(out, out=out)
    np.minimum(out, np.float32(1.0), out=out)
    return out


def _blocks(rows: int, width: int, max_cells: int) -> list[tuple[int, int]]:
    size = max(1, int(max_cells) // max(1, width))
    return [(s, min(rows, s + size)) for s in range(0, rows, size)]
