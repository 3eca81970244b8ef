"""Exact marginals of the sensitive rows: the one place AIM (and DP quantile edges) read
them.

**Sensitive**: :func:`encode_rows` reads rows through ``table.reveal()`` and returns
their integer codes; :class:`ExactMarginals` holds those codes and answers exact counts,
which the mechanisms in ``aim.py`` / ``dp_edges.py`` only ever release through Gaussian
noise or the exponential mechanism. Nothing here logs, prints or stores a count.

Speed and memory: codes are kept in the smallest unsigned dtype (a million rows of 15
columns is 15 MB); a marginal is one ``bincount`` over a flat index built in place, so
its cost is linear in rows. Answers are cached up to ``cache_cells`` cells, and a marginal
whose superset is cached is summed from it instead of recounted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.jtree import Clique
from synthrelease.private.table import SensitiveTable

DEFAULT_CACHE_CELLS = 2**24  # 128 MB of float64 answers


def _dtype(size: int) -> type:
    return np.uint8 if size <= 2**8 else np.uint16 if size <= 2**16 else np.uint32


def encode_rows(table: SensitiveTable, disc: Discretiser) -> np.ndarray:
    """READS SENSITIVE ROWS: codes of the declared columns, shape (columns, rows)."""
    missing = [n for n in disc.names if n not in table.columns]
    if missing:
        raise SchemaMismatchError(f"the table lacks declared column(s): {', '.join(missing)}")
    frame = disc.encode(table.reveal()[disc.names])
    sizes = list(disc.sizes.values())
    return np.stack([frame[n].to_numpy().astype(_dtype(s)) for n, s in zip(disc.names, sizes)])


class ExactMarginals:
    """Exact (sensitive) counts of any marginal of integer-coded rows."""

    def __init__(
        self, codes: np.ndarray, sizes: Sequence[int], *, cache_cells: int = DEFAULT_CACHE_CELLS
    ) -> None:
        self._codes = codes
        self.sizes = tuple(int(s) for s in sizes)
        if codes.shape[0] != len(self.sizes):
            raise SchemaMismatchError("codes and domain disagree on the number of columns")
        self._cache: dict[Clique, np.ndarray] = {}
        self._cells = 0
        self._budget = int(cache_cells)
        self.seconds = 0.0  # time spent counting rows (benchmarks: the part linear in rows)

    def compressed(self, maps: Sequence[np.ndarray]) -> ExactMarginals:
        """The same rows on a compressed domain (``maps[i][code] -> new code``); the
        original codes are released from this object."""
        start = time.perf_counter()
        sizes = [int(m.max()) + 1 for m in maps]
        codes = np.stack(
            [np.asarray(m)[c].astype(_dtype(s)) for m, c, s in zip(maps, self._codes, sizes)]
        )
        self._codes = np.empty((0, 0), dtype=np.uint8)
        self._cache.clear()
        out = ExactMarginals(codes, sizes, cache_cells=self._budget)
        out.seconds = self.seconds + time.perf_counter() - start
        return out

    def counts(self, clique: Clique) -> np.ndarray:
        """Exact counts of the marginal on ``clique`` (sorted), flat in C order."""
        clique = tuple(clique)
        hit = self._cache.get(clique)
        if hit is not None:
            return hit
        for sup, table in self._cache.items():
            if set(clique) < set(sup):
                shaped = table.reshape([self.sizes[a] for a in sup])
                axes = tuple(i for i, a in enumerate(sup) if a not in clique)
                return self._keep(clique, shaped.sum(axis=axes).ravel())
        start = time.perf_counter()
        cells = math.prod(self.sizes[a] for a in clique)
        if not clique:
            return np.array([float(self._codes.shape[1])])
        flat = self._codes[clique[0]].astype(np.int64)
        for a in clique[1:]:
            flat *= self.sizes[a]
            flat += self._codes[a]
        table = np.bincount(flat, minlength=cells).astype(np.float64)
        self.seconds += time.perf_counter() - start
        return self._keep(clique, table)

    def _keep(self, clique: Clique, table: np.ndarray) -> np.ndarray:
        if self._cells + table.size <= self._budget:
            self._cache[clique] = table
            self._cells += table.size
        return table

    def release(self) -> None:
        """Drop the codes and every cached count (call when measuring is over)."""
        self._codes = np.empty((0, 0), dtype=np.uint8)
        self._cache.clear()
        self._cells = 0
