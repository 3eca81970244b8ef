"""Exact marginals of the sensitive rows: the one place AIM (and DP quantile edges) read
them.

**Sensitive**: :func:`encode_rows` reads rows through ``table.reveal()`` and returns
their integer codes; :class:`ExactMarginals` holds those codes and answers exact counts,
which the mechanisms in ``aim.py`` / ``dp_edges.py`` only ever release through Gaussian
noise or the exponential mechanism. Nothing here logs, prints or stores a count.

Speed and memory: codes are kept in the smallest unsigned dtype (a million rows of 15
columns is 15 MB), in memory or in the pipeline's code store on disk
(:mod:`synthrelease.private.codes`); a marginal is one ``bincount`` per chunk over a
flat index built in place, so its cost is linear in rows and its memory is one chunk's;
:meth:`ExactMarginals.prefetch` counts many marginals in one pass. Answers are cached up to ``cache_cells`` cells, and a marginal
whose superset is cached is summed from it instead of recounted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import numpy as np

from synthrelease.errors import GeneratorError, SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.jtree import Clique
from synthrelease.private.codes import CHUNK_ROWS, CountedCodes, SensitiveCodes, code_dtype
from synthrelease.private.table import SensitiveTable

DEFAULT_CACHE_CELLS = 2**24  # 128 MB of float64 answers


CodeSource = np.ndarray | SensitiveCodes | CountedCodes


def encode_rows(
    table: SensitiveTable | SensitiveCodes | CountedCodes, disc: Discretiser
) -> CodeSource:
    """READS SENSITIVE ROWS: codes of the declared columns, shape (columns, rows), in
    memory; or, for a code store written by the pipeline's one-pass ingestion (or codes
    that a database counts where they are), the store itself (checked against the
    domain), read chunk by chunk (or asked for counts) by :class:`ExactMarginals`."""
    sizes = list(disc.sizes.values())
    if isinstance(table, (SensitiveCodes, CountedCodes)):
        if table.names != list(disc.names) or table.sizes != sizes:
            raise SchemaMismatchError("the code store was written for another domain")
        return table
    missing = [n for n in disc.names if n not in table.columns]
    if missing:
        raise SchemaMismatchError(f"the table lacks declared column(s): {', '.join(missing)}")
    frame = disc.encode(table.reveal()[disc.names])
    return np.stack([frame[n].to_numpy().astype(code_dtype(s)) for n, s in zip(disc.names, sizes)])


class ExactMarginals:
    """Exact (sensitive) counts of any marginal of integer-coded rows, held in memory or
    in a code store; either way counted ``CHUNK_ROWS`` rows at a time, so a count holds
    one chunk's flat index (8 MB), never one the size of the table."""

    def __init__(
        self,
        codes: CodeSource,
        sizes: Sequence[int],
        *,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        maps: Sequence[np.ndarray] | None = None,
    ) -> None:
        self._codes: CodeSource | None = codes
        self._maps = None if maps is None else [np.asarray(m, dtype=np.int64) for m in maps]
        self.sizes = tuple(int(s) for s in sizes)
        width = codes.shape[0] if isinstance(codes, np.ndarray) else len(codes.names)
        if width != len(self.sizes):
            raise SchemaMismatchError("codes and domain disagree on the number of columns")
        self._cache: dict[Clique, np.ndarray] = {}
        self._cells = 0
        self._budget = int(cache_cells)
        self.seconds = 0.0  # time spent counting rows (benchmarks: the part linear in rows)

    def compressed(self, maps: Sequence[np.ndarray]) -> ExactMarginals:
        """The same rows on a compressed domain (``maps[i][code] -> new code``, applied
        chunk by chunk as they are read); this object lets go of the rows."""
        if self._codes is None:
            raise GeneratorError("exact marginals already released")
        sizes = [int(np.max(m)) + 1 for m in maps]
        if self._maps is not None:
            maps = [np.asarray(m)[old] for m, old in zip(maps, self._maps)]
        out = ExactMarginals(self._codes, sizes, cache_cells=self._budget, maps=maps)
        out.seconds = self.seconds
        self.release()
        return out

    def _chunks(self) -> Iterator[np.ndarray]:
        codes = self._codes
        if codes is None:
            raise GeneratorError("exact marginals already released")
        if isinstance(codes, SensitiveCodes):
            yield from codes.reveal(rows=CHUNK_ROWS)  # READS SENSITIVE CODES
        elif isinstance(codes, CountedCodes):
            raise GeneratorError("codes counted in a database are not read row by row")
        else:
            for start in range(0, codes.shape[1], CHUNK_ROWS):
                yield codes[:, start : start + CHUNK_ROWS]

    def _count(self, cliques: Sequence[Clique]) -> list[np.ndarray]:
        """One pass over the rows, counting every clique of ``cliques``."""
        start = time.perf_counter()
        cells = [math.prod(self.sizes[a] for a in c) for c in cliques]
        if isinstance(self._codes, CountedCodes):  # counted where the rows are
            tables = [
                self._tally(c, n, *found)
                for c, n, found in zip(cliques, cells, self._codes.reveal_counts(cliques))
            ]
            self.seconds += time.perf_counter() - start
            return tables
        tables = [np.zeros(n, dtype=np.int64) for n in cells]
        used = sorted({a for c in cliques for a in c})
        for chunk in self._chunks():
            cols = {a: chunk[a].astype(np.int64) for a in used}
            if self._maps is not None:
                cols = {a: self._maps[a][v] for a, v in cols.items()}
            for c, n, table in zip(cliques, cells, tables):
                flat = cols[c[0]].copy()
                for a in c[1:]:
                    flat *= self.sizes[a]
                    flat += cols[a]
                table += np.bincount(flat, minlength=n)
        self.seconds += time.perf_counter() - start
        return [t.astype(np.float64) for t in tables]

    def _tally(self, clique: Clique, n: int, codes: np.ndarray, found: np.ndarray) -> np.ndarray:
        """A clique's flat table from the cells a :class:`CountedCodes` found (codes on
        the store's domain, mapped here onto the compressed one)."""
        flat = np.zeros(len(found), dtype=np.int64)
        for row, a in zip(codes, clique):
            column = row.astype(np.int64)
            flat = flat * self.sizes[a] + (column if self._maps is None else self._maps[a][column])
        return np.bincount(flat, weights=found.astype(np.float64), minlength=n)

    def prefetch(self, cliques: Sequence[Clique]) -> None:
        """Count every clique of ``cliques`` not yet known in one pass and keep them (as
        far as the cache holds): a code store is read once, not once per marginal."""
        todo = [tuple(c) for c in dict.fromkeys(tuple(c) for c in cliques) if c]
        todo = [c for c in todo if c not in self._cache]
        for clique, table in zip(todo, self._count(todo) if todo else []):
            self._keep(clique, table)

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
        if not clique:
            if isinstance(self._codes, CountedCodes):
                return np.array([float(self._codes.reveal_counts([()])[0][1].sum())])
            return np.array([float(sum(c.shape[1] for c in self._chunks()))])
        return self._keep(clique, self._count([clique])[0])

    def _keep(self, clique: Clique, table: np.ndarray) -> np.ndarray:
        if self._cells + table.size <= self._budget:
            self._cache[clique] = table
            self._cells += table.size
        return table

    def release(self) -> None:
        """Drop the codes and every cached count (call when measuring is over)."""
        self._codes = None
        self._cache.clear()
        self._cells = 0
