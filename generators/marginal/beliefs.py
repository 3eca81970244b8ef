"""A calibrated graphical model's clique marginals, and marginal queries on them.

Reads no sensitive rows (post-processing of a model estimated from DP measurements). A
query inside a junction-tree clique is a sum; any other query is contracted over the
smallest subtree that covers it, with conditional tables ``P(J | separator)`` (all
entries in [0, 1], so nothing under- or overflows), one small ``einsum`` per clique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.jtree import Clique, JunctionTree
from synthrelease.generators.marginal.tables import broadcast_shape, contract, sum_to


def _cover(jt: JunctionTree, q: Clique) -> tuple[dict[int, int], list[int]]:
    """A small connected set of cliques holding every attribute of ``q`` (greedy Steiner
    tree: start at a holder of the rarest attribute, join the nearest holder of each
    missing one), rooted at the member holding the most of ``q``. Returns the local
    parent of each member and a root-first order."""
    n = len(jt.cliques)
    adjacent: list[list[int]] = [[] for _ in range(n)]
    for k, p in enumerate(jt.parent):
        if p >= 0:
            adjacent[k].append(p)
            adjacent[p].append(k)
    holders = {a: [k for k in range(n) if a in jt.cliques[k]] for a in q}
    attrs = sorted(q, key=lambda a: (len(holders[a]), -jt.sizes[a]))

    def held(k: int) -> int:
        return sum(a in jt.cliques[k] for a in q)

    members = {max(holders[attrs[0]], key=lambda k: (held(k), -k))}
    for a in attrs[1:]:
        if any(a in jt.cliques[k] for k in members):
            continue
        back = {k: -1 for k in members}  # breadth-first search out of the members
        frontier = list(members)
        found = -1
        while frontier and found < 0:
            nxt = []
            for k in frontier:
                for m in adjacent[k]:
                    if m not in back:
                        back[m] = k
                        if a in jt.cliques[m]:
                            found = m
                            break
                        nxt.append(m)
                if found >= 0:
                    break
            frontier = nxt
        if found < 0:
            raise GeneratorError("marginal query: an attribute is in no clique (bug)")
        while found not in members:
            members.add(found)
            found = back[found]
    root = max(members, key=lambda k: (held(k), -k))
    parent, order = {root: -1}, [root]
    for k in order:
        for m in adjacent[k]:
            if m in members and m not in parent:
                parent[m] = k
                order.append(m)
    return parent, order


@dataclass
class Beliefs:
    """Normalised marginals P(J) of every junction-tree clique J (a calibrated model)."""

    sizes: tuple[int, ...]
    tree: JunctionTree
    tables: list[np.ndarray]
    _projections: dict[tuple[int, Clique], np.ndarray] = field(default_factory=dict, repr=False)
    # filled by Calibrator.beliefs: the marginals of its potential cliques
    potential_sums: list[np.ndarray] = field(default_factory=list, repr=False)

    def project(self, attrs: Sequence[int]) -> np.ndarray:
        """P(attrs) as an array with axes in sorted attribute order (sums to 1)."""
        q = tuple(sorted(attrs))
        k = self.tree.containing(q)
        if k is not None:
            return sum_to(self.tables[k], self.tree.cliques[k], q)
        return self._contract_subtree(q)

    def _projection(self, k: int, keep: Clique) -> np.ndarray:
        """P(keep) from clique k, cached (many queries pass through the same cliques)."""
        key = (k, keep)
        if key not in self._projections:
            self._projections[key] = sum_to(self.tables[k], self.tree.cliques[k], keep)
        return self._projections[key]

    def _contract_subtree(self, q: Clique) -> np.ndarray:
        """P(q) for attributes in no single clique, over a small subtree covering q (see
        :func:`_cover`): P(root) * prod P(J | separator_J), each clique first summed down
        to the attributes that matter (its separators and q), so memory stays near the
        size of those projections, never a clique times the query's domain."""
        jt = self.tree
        local_parent, order = _cover(jt, q)
        cliques = jt.cliques
        messages: dict[int, tuple[Clique, np.ndarray]] = {}
        for k in reversed(order):
            clique = cliques[k]
            kids = [c for c in order if local_parent.get(c) == k]
            p = local_parent.get(k, -1)
            sep = () if p < 0 else tuple(a for a in clique if a in cliques[p])
            keep = set(q) | set(sep)
            for c in kids:
                keep |= set(cliques[c]) & set(clique)
            keep_t = tuple(a for a in clique if a in keep)
            table = self._projection(k, keep_t)
            if sep:  # P(keep | separator)
                marg = self._projection(k, sep).reshape(broadcast_shape(self.sizes, sep, keep_t))
                table = np.divide(table, marg, out=np.zeros_like(table), where=marg > 0)
            factors = [(keep_t, table)] + [messages.pop(c) for c in kids]
            if p < 0:
                return contract(factors, q)
            present = {a for c, _ in factors for a in c}
            out = tuple(sorted((set(q) & present) | set(sep)))
            messages[k] = (out, contract(factors, out))
        raise GeneratorError("marginal query could not be contracted (bug)")
