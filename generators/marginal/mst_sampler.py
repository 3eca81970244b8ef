"""The fitted tree MST releases (:class:`TreeModel`): its sampler and its stored form.

Reads no sensitive rows: a :class:`TreeModel` holds only post-processing of noisy (DP)
measurements. Sampling uses the caller's ``numpy.random.Generator`` (never the global
one, unlike ``mbi``'s own ``synthetic_data``), so a saved and re-loaded model draws identical rows from the same
generator state. Stored form: JSON metadata plus plain float/int arrays (no pickle).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.compress import decompress
from synthrelease.generators.marginal.sampling import draw


@dataclass(frozen=True)
class TreeModel:
    """A tree of 2-way marginals over the compressed domain, plus the decompression maps.

    ``maps[i][orig_code] = compressed_code``; ``edges`` are attribute-index pairs (a < b);
    ``edge_marginals[k]`` has shape ``(sizes[a], sizes[b])``; ``potentials`` are mbi's
    log-space clique potentials (kept for inspection and re-estimation).
    """

    sizes: tuple[int, ...]
    maps: tuple[np.ndarray, ...]
    edges: tuple[tuple[int, int], ...]
    one_way: tuple[np.ndarray, ...]
    edge_marginals: tuple[np.ndarray, ...]
    cliques: tuple[tuple[int, ...], ...]
    potentials: tuple[np.ndarray, ...]
    total: float

    # ------------------------------------------------------------------ sampling
    def sample_codes(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Original-domain codes, shape (attributes, num_rows): ancestral sampling along
        the tree with stratified uniforms inside each parent group (low variance)."""
        d = len(self.sizes)
        out = np.empty((d, num_rows), dtype=np.int64)
        compressed = np.empty((d, num_rows), dtype=np.int64)
        compressed[0] = draw(np.zeros(num_rows, dtype=np.int64), self.one_way[0][None, :], rng)
        for parent, child, joint in self._steps():
            compressed[child] = draw(compressed[parent], joint, rng)
        for i in range(d):
            out[i] = decompress(compressed[i], self.maps[i], rng)
        return out

    def _steps(self) -> list[tuple[int, int, np.ndarray]]:
        adjacent: dict[int, list[tuple[int, int]]] = {}
        for k, (a, b) in enumerate(self.edges):
            adjacent.setdefault(a, []).append((b, k))
            adjacent.setdefault(b, []).append((a, k))
        steps, seen, queue = [], {0}, deque([0])
        while queue:
            node = queue.popleft()
            for other, k in sorted(adjacent.get(node, [])):
                if other in seen:
                    continue
                joint = self.edge_marginals[k]
                steps.append((node, other, joint if self.edges[k][0] == node else joint.T))
                seen.add(other)
                queue.append(other)
        if len(seen) != len(self.sizes):
            raise GeneratorError("the model's edges do not form a spanning tree")
        return steps

    # ------------------------------------------------------------------ storage
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "sizes": list(self.sizes),
            "edges": [list(e) for e in self.edges],
            "cliques": [list(c) for c in self.cliques],
            "total": self.total,
        }
        arrays: dict[str, np.ndarray] = {}
        for i, (m, p) in enumerate(zip(self.maps, self.one_way)):
            arrays[f"map_{i}"], arrays[f"one_way_{i}"] = m, p
        for k, x in enumerate(self.edge_marginals):
            arrays[f"edge_{k}"] = x
        for k, x in enumerate(self.potentials):
            arrays[f"potential_{k}"] = x
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TreeModel:
        try:
            d, n_edges, n_cliques = len(meta["sizes"]), len(meta["edges"]), len(meta["cliques"])
            model = cls(
                sizes=tuple(int(s) for s in meta["sizes"]),
                maps=tuple(np.asarray(arrays[f"map_{i}"], dtype=np.int64) for i in range(d)),
                edges=tuple((int(a), int(b)) for a, b in meta["edges"]),
                one_way=tuple(np.asarray(arrays[f"one_way_{i}"], float) for i in range(d)),
                edge_marginals=tuple(
                    np.asarray(arrays[f"edge_{k}"], float) for k in range(n_edges)
                ),
                cliques=tuple(tuple(int(a) for a in c) for c in meta["cliques"]),
                potentials=tuple(
                    np.asarray(arrays[f"potential_{k}"], float) for k in range(n_cliques)
                ),
                total=float(meta["total"]),
            )
        except (KeyError, TypeError, ValueError):
            raise GeneratorError("the stored MST model is incomplete or malformed") from None
        model._validate()
        return model

    def _validate(self) -> None:
        sizes = self.sizes
        ok = (
            len(self.maps) == len(self.one_way) == len(sizes)
            and all(
                m.ndim == 1 and m.size and m.min() >= 0 and m.max() + 1 == s
                for m, s in zip(self.maps, sizes)
            )
            and all(p.shape == (s,) for p, s in zip(self.one_way, sizes))
            and len(self.edge_marginals) == len(self.edges)
            and all(
                0 <= a < b < len(sizes) and m.shape == (sizes[a], sizes[b])
                for (a, b), m in zip(self.edges, self.edge_marginals)
            )
            and all(np.isfinite(x).all() for x in (*self.one_way, *self.edge_marginals))
        )
        if not ok:
            raise GeneratorError("the stored MST model is inconsistent")
        self._steps()  # the edges must form a spanning tree
