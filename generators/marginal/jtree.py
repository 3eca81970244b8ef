"""Junction trees of discrete graphical models: structure only, no numbers, no data.

A model over attributes ``0..d-1`` (domain sizes ``sizes``) with potentials on a set of
cliques is triangulated by greedy variable elimination (eliminate the attribute whose
elimination clique has the fewest cells, as Private-PGM's ``greedy_order`` does); the
maximal elimination cliques, joined by a maximum-weight spanning tree on separator
sizes, form the junction tree. Pure Python: building one for a few dozen attributes
takes well under a millisecond, so AIM can price every candidate clique each round
(:func:`model_cells`) without networkx.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Clique = tuple[int, ...]


@dataclass(frozen=True)
class JunctionTree:
    """Maximal cliques (sorted attribute tuples), a parent per clique (-1: the root) and
    a root-first order in which every clique comes after its parent."""

    sizes: tuple[int, ...]
    cliques: tuple[Clique, ...]
    parent: tuple[int, ...]
    order: tuple[int, ...]

    def separator(self, k: int) -> Clique:
        """Attributes clique ``k`` shares with its parent (empty for the root)."""
        p = self.parent[k]
        return () if p < 0 else tuple(a for a in self.cliques[k] if a in self.cliques[p])

    def cells(self, k: int) -> int:
        return math.prod(self.sizes[a] for a in self.cliques[k])

    @property
    def total_cells(self) -> int:
        return sum(self.cells(k) for k in range(len(self.cliques)))

    def containing(self, attrs: Iterable[int]) -> int | None:
        """Index of the smallest clique holding every attribute of ``attrs``, or None."""
        want = set(attrs)
        best = [k for k, c in enumerate(self.cliques) if want <= set(c)]
        return min(best, key=self.cells) if best else None


def elimination_cliques(sizes: Sequence[int], cliques: Iterable[Clique]) -> list[Clique]:
    """The maximal cliques of the greedy triangulation of ``cliques`` over all attributes."""
    d = len(sizes)
    nbrs: list[set[int]] = [set() for _ in range(d)]
    for cl in cliques:
        for a in cl:
            nbrs[a].update(b for b in cl if b != a)
    left = set(range(d))
    found: list[frozenset[int]] = []
    while left:
        v = min(left, key=lambda a: (math.prod(sizes[b] for b in nbrs[a] | {a}), a))
        group = nbrs[v] | {v}
        found.append(frozenset(group))
        for a in nbrs[v]:
            nbrs[a].update(b for b in nbrs[v] if b != a)
            nbrs[a].discard(v)
        left.discard(v)
    maximal = [c for c in found if not any(c < o for o in found)]
    unique = sorted({tuple(sorted(c)) for c in maximal}, key=lambda c: (len(c), c))
    return unique


class DisjointSets:
    """Union-find over ``range(n)`` (path halving): Kruskal's bookkeeping."""

    def __init__(self, n: int) -> None:
        self._root = list(range(n))

    def find(self, x: int) -> int:
        root = self._root
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False if they were one set already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self._root[ra] = rb
        return True

    def count(self) -> int:
        return len({self.find(x) for x in range(len(self._root))})


def build(sizes: Sequence[int], cliques: Iterable[Clique]) -> JunctionTree:
    """A junction tree for a model with potentials on ``cliques`` (every attribute of
    ``range(len(sizes))`` is included, isolated ones as singleton cliques)."""
    maximal = elimination_cliques(sizes, cliques)
    n = len(maximal)
    # Kruskal on -|separator| (ties: smaller index pairs first) over all pairs; pairs that
    # share nothing join disconnected parts with an empty separator.
    pairs = sorted(
        ((len(set(maximal[i]) & set(maximal[j])), i, j) for i in range(n) for j in range(i + 1, n)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    sets = DisjointSets(n)
    adjacent: list[list[int]] = [[] for _ in range(n)]
    for _, i, j in pairs:
        if sets.union(i, j):
            adjacent[i].append(j)
            adjacent[j].append(i)
    root = max(range(n), key=lambda k: (math.prod(sizes[a] for a in maximal[k]), -k))
    parent = [-1] * n
    order = [root]
    seen = {root}
    for k in order:
        for m in sorted(adjacent[k]):
            if m not in seen:
                seen.add(m)
                parent[m] = k
                order.append(m)
    return JunctionTree(tuple(int(s) for s in sizes), tuple(maximal), tuple(parent), tuple(order))


def model_cells(sizes: Sequence[int], cliques: Iterable[Clique]) -> int:
    """Cells in the junction tree of ``cliques``: the memory a model of them needs."""
    return sum(math.prod(sizes[a] for a in c) for c in elimination_cliques(sizes, cliques))


def maximal_subset(cliques: Iterable[Clique]) -> list[Clique]:
    """The cliques not contained in another (order of first appearance, duplicates once)."""
    unique: list[Clique] = []
    for c in cliques:
        c = tuple(sorted(c))
        if c not in unique:
            unique.append(c)
    return [c for c in unique if not any(set(c) < set(o) for o in unique)]
