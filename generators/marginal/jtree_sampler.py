"""The fitted junction-tree model AIM releases (:class:`GraphicalModel`): its sampler
with the caller's rng, its stored form, marginal queries.

Reads no sensitive rows: it holds the normalised clique marginals of a model estimated
from DP measurements (post-processing), over a compressed domain, plus the maps back
to the original codes. Sampling is ancestral along the junction tree (root clique
first, then each clique given its separator) with the stratified draws of
:func:`~synthrelease.generators.marginal.sampling.draw`, using only the
``numpy.random.Generator`` it is given (mbi's ``synthetic_data`` uses the global
``np.random``). Stored form: JSON metadata plus float/int arrays (no pickle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.beliefs import Beliefs
from synthrelease.generators.marginal.compress import decompress
from synthrelease.generators.marginal.jtree import JunctionTree
from synthrelease.generators.marginal.sampling import draw


@dataclass(frozen=True)
class GraphicalModel:
    """``tables[k]`` = P(tree.cliques[k]) (axes in sorted attribute order) on the
    compressed domain ``tree.sizes``; ``maps[i][orig_code] = compressed_code``."""

    tree: JunctionTree
    tables: tuple[np.ndarray, ...]
    maps: tuple[np.ndarray, ...]
    measured: tuple[tuple[int, ...], ...]
    total: float

    @classmethod
    def from_beliefs(
        cls,
        beliefs: Beliefs,
        maps: Sequence[np.ndarray],
        measured: Sequence[tuple[int, ...]],
        total: float,
    ) -> GraphicalModel:
        tables = tuple(np.maximum(np.asarray(t, float), 0.0) for t in beliefs.tables)
        model = cls(
            beliefs.tree,
            tables,
            tuple(np.asarray(m, np.int64) for m in maps),
            tuple(tuple(c) for c in measured),
            float(total),
        )
        model._validate()
        return model

    def beliefs(self) -> Beliefs:
        return Beliefs(self.tree.sizes, self.tree, list(self.tables))

    # ------------------------------------------------------------------ sampling
    def sample_codes(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Original-domain codes, shape (attributes, num_rows)."""
        jt, sizes = self.tree, self.tree.sizes
        d = len(sizes)
        compressed = np.zeros((d, num_rows), dtype=np.int64)
        for k in jt.order:
            clique, sep = jt.cliques[k], jt.separator(k)
            rest = tuple(a for a in clique if a not in sep)
            if not rest:
                continue
            table = self.tables[k]
            perm = [clique.index(a) for a in (*sep, *rest)]
            n_sep = math.prod(sizes[a] for a in sep)
            joint = np.transpose(table, perm).reshape(n_sep, -1)
            if sep:
                parents = np.ravel_multi_index(
                    tuple(compressed[a] for a in sep), tuple(sizes[a] for a in sep)
                )
            else:
                parents = np.zeros(num_rows, dtype=np.int64)
            child = draw(parents, joint, rng)
            for a, codes in zip(rest, np.unravel_index(child, tuple(sizes[a] for a in rest))):
                compressed[a] = codes
        out = np.empty_like(compressed)
        for i in range(d):
            out[i] = decompress(compressed[i], self.maps[i], rng)
        return out

    # ------------------------------------------------------------------ storage
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "sizes": list(self.tree.sizes),
            "cliques": [list(c) for c in self.tree.cliques],
            "parent": list(self.tree.parent),
            "order": list(self.tree.order),
            "measured": [list(c) for c in self.measured],
            "total": self.total,
        }
        arrays = {f"map_{i}": m for i, m in enumerate(self.maps)}
        arrays.update({f"table_{k}": t for k, t in enumerate(self.tables)})
        return meta, arrays

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> GraphicalModel:
        try:
            sizes = tuple(int(s) for s in meta["sizes"])
            cliques = tuple(tuple(int(a) for a in c) for c in meta["cliques"])
            tree = JunctionTree(
                sizes,
                cliques,
                tuple(int(p) for p in meta["parent"]),
                tuple(int(k) for k in meta["order"]),
            )
            model = cls(
                tree=tree,
                tables=tuple(np.asarray(arrays[f"table_{k}"], float) for k in range(len(cliques))),
                maps=tuple(np.asarray(arrays[f"map_{i}"], np.int64) for i in range(len(sizes))),
                measured=tuple(tuple(int(a) for a in c) for c in meta["measured"]),
                total=float(meta["total"]),
            )
        except (KeyError, TypeError, ValueError):
            raise GeneratorError("the stored graphical model is incomplete or malformed") from None
        model._validate()
        return model

    def _validate(self) -> None:
        jt, sizes = self.tree, self.tree.sizes
        n = len(jt.cliques)
        ok = (
            len(self.maps) == len(sizes)
            and all(
                m.ndim == 1 and m.size and m.min() >= 0 and m.max() + 1 == s
                for m, s in zip(self.maps, sizes)
            )
            and len(self.tables) == len(jt.parent) == n
            and sorted(jt.order) == list(range(n))
            and all(
                tuple(sorted(set(c))) == c and all(0 <= a < len(sizes) for a in c)
                for c in jt.cliques
            )
            and {a for c in jt.cliques for a in c} == set(range(len(sizes)))
            and all(t.shape == tuple(sizes[a] for a in c) for t, c in zip(self.tables, jt.cliques))
            and all(np.isfinite(t).all() and (t >= 0).all() and t.sum() > 0 for t in self.tables)
            and math.isfinite(self.total)
        )
        seen: set[int] = set()
        for k in jt.order:  # every clique after its parent: a rooted tree
            p = jt.parent[k]
            ok = ok and ((p == -1 and not seen) or p in seen)
            seen.add(k)
        if not ok:
            raise GeneratorError("the stored graphical model is inconsistent")
