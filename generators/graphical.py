"""The marginal engine: exact inference in discrete graphical models, in numpy.

Reads no sensitive rows: it computes with log-potentials and noisy (DP) measurements
only. :class:`Calibrator` holds the plan for one model structure (which potential goes
to which junction-tree clique, which axes each message sums out) and turns
log-potentials into calibrated clique beliefs with two passes of log-space message
passing (Hugin schedule). :class:`Beliefs` answers marginal queries from them: a query
inside a junction-tree clique is a sum; any other query is contracted over the smallest
subtree that covers it, with conditional tables ``P(J | separator)`` (all entries in
[0, 1], so nothing under- or overflows), one small ``einsum`` per clique.

Why not mbi's JAX oracles on CPU: they compile an XLA program per model structure, and
AIM changes the structure every round (seconds of compilation per round on two cores);
these numpy passes need no compilation, and cost a few passes over the junction tree's
cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.jtree import Clique, JunctionTree, build

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _shape(sizes: Sequence[int], attrs: Clique, within: Clique) -> tuple[int, ...]:
    """Broadcast shape of an array over ``attrs`` inside one over ``within`` (both sorted)."""
    return tuple(sizes[a] if a in attrs else 1 for a in within)


def _logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log(sum(exp(x))) over ``axes``, keeping them as length-1 axes."""
    if not axes:
        return x
    top = x.max(axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(x - top).sum(axis=axes, keepdims=True)) + top


def contract(factors: Sequence[tuple[Clique, np.ndarray]], out: Clique) -> np.ndarray:
    """sum over everything but ``out`` of the product of ``factors``, each an array whose
    axes are its sorted attribute tuple (einsum with letters assigned locally)."""
    attrs = sorted({a for c, _ in factors for a in c} | set(out))
    if len(attrs) > len(_LETTERS):
        raise GeneratorError("a marginal query spans more than 52 attributes")
    letter = {a: _LETTERS[i] for i, a in enumerate(attrs)}
    spec = ",".join("".join(letter[a] for a in c) for c, _ in factors)
    spec += "->" + "".join(letter[a] for a in out)
    return np.einsum(spec, *[x for _, x in factors], optimize="greedy")


class Calibrator:
    """Inference plan for log-potentials on fixed ``cliques`` over domain ``sizes``."""

    def __init__(self, sizes: Sequence[int], cliques: Sequence[Clique],
                 tree: JunctionTree | None = None) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.cliques = tuple(tuple(sorted(c)) for c in cliques)
        self.tree = tree if tree is not None else build(self.sizes, self.cliques)
        jt = self.tree
        self.home: list[int] = []
        for c in self.cliques:
            k = jt.containing(c)
            if k is None:
                raise GeneratorError("a potential lies in no junction-tree clique (bug)")
            self.home.append(k)
        self.jt_shapes = [tuple(self.sizes[a] for a in c) for c in jt.cliques]
        self.pot_shapes = [_shape(self.sizes, c, jt.cliques[k]) for c, k in zip(self.cliques, self.home)]
        self.children: list[list[int]] = [[] for _ in jt.cliques]
        for k in jt.order[1:]:
            self.children[jt.parent[k]].append(k)
        # message k -> parent: sum out cliques[k] \ sep; reshape to broadcast in parent
        self.up_axes: dict[int, tuple[int, ...]] = {}
        self.up_shape: dict[int, tuple[int, ...]] = {}
        self.down_axes: dict[int, tuple[int, ...]] = {}
        self.down_shape: dict[int, tuple[int, ...]] = {}
        for k in jt.order[1:]:
            p, sep = jt.parent[k], jt.separator(k)
            ck, cp = jt.cliques[k], jt.cliques[p]
            self.up_axes[k] = tuple(i for i, a in enumerate(ck) if a not in sep)
            self.up_shape[k] = _shape(self.sizes, sep, cp)
            self.down_axes[k] = tuple(i for i, a in enumerate(cp) if a not in sep)
            self.down_shape[k] = _shape(self.sizes, sep, ck)

    # ------------------------------------------------------------------ inference
    def beliefs(self, potentials: Sequence[np.ndarray]) -> "Beliefs":
        """Calibrated, normalised clique tables for log-potentials (one per clique)."""
        jt = self.tree
        base = [np.zeros(s) for s in self.jt_shapes]
        for theta, k, shape in zip(potentials, self.home, self.pot_shapes):
            base[k] = base[k] + np.reshape(theta, shape)
        up: dict[int, np.ndarray] = {}
        for k in reversed(jt.order):  # collect: leaves first
            for c in self.children[k]:
                base[k] = base[k] + up[c]
            if jt.parent[k] >= 0:
                up[k] = _logsumexp(base[k], self.up_axes[k]).reshape(self.up_shape[k])
        for k in jt.order[1:]:  # distribute: root first (base[parent] is final by now)
            p = jt.parent[k]
            msg = _logsumexp(base[p] - up[k], self.down_axes[k]).reshape(self.down_shape[k])
            base[k] = base[k] + msg
        root = jt.order[0]
        log_z = float(_logsumexp(base[root], tuple(range(base[root].ndim))).ravel()[0])
        if not math.isfinite(log_z):
            raise GeneratorError("graphical model inference diverged (non-finite potentials)")
        return Beliefs(self.sizes, jt, [np.exp(b - log_z) for b in base])

    def marginals(self, potentials: Sequence[np.ndarray], total: float) -> list[np.ndarray]:
        """The model's marginal on each potential clique, scaled to ``total``."""
        b = self.beliefs(potentials)
        return [b.project(c) * total for c in self.cliques]


@dataclass
class Beliefs:
    """Normalised marginals P(J) of every junction-tree clique J (a calibrated model)."""

    sizes: tuple[int, ...]
    tree: JunctionTree
    tables: list[np.ndarray]
    _conditionals: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def project(self, attrs: Sequence[int]) -> np.ndarray:
        """P(attrs) as an array with axes in sorted attribute order (sums to 1)."""
        q = tuple(sorted(attrs))
        k = self.tree.containing(q)
        if k is not None:
            clique = self.tree.cliques[k]
            axes = tuple(i for i, a in enumerate(clique) if a not in q)
            return self.tables[k].sum(axis=axes) if axes else self.tables[k]
        return self._contract_subtree(q)

    def conditional(self, k: int) -> np.ndarray:
        """P(clique k | its separator), broadcast over the clique (zero where P(sep) = 0)."""
        if k not in self._conditionals:
            clique, sep = self.tree.cliques[k], self.tree.separator(k)
            axes = tuple(i for i, a in enumerate(clique) if a not in sep)
            table = self.tables[k]
            marg = table.sum(axis=axes, keepdims=True)
            self._conditionals[k] = np.divide(table, marg, out=np.zeros_like(table),
                                              where=marg > 0)
        return self._conditionals[k]

    def _contract_subtree(self, q: Clique) -> np.ndarray:
        jt = self.tree
        # root the query at the topmost clique holding q[0]: the cliques holding an
        # attribute form a connected subtree, whose top is the first in root-first order
        rank = {k: i for i, k in enumerate(jt.order)}
        tops = []
        for a in q:
            holders = [k for k in jt.order if a in jt.cliques[k]]
            tops.append(holders[0])
        needed: set[int] = set()
        for t in tops:
            k = t
            while k >= 0 and k not in needed:
                needed.add(k)
                k = jt.parent[k]
        # the subtree hangs from the needed clique nearest the tree root; trim the chain
        # above the point where the paths from the tops meet
        top = min(needed, key=rank.__getitem__)
        while True:
            kids = [k for k in needed if jt.parent[k] == top]
            if top in tops or len(kids) != 1:
                break
            needed.discard(top)
            top = kids[0]
        messages: dict[int, tuple[Clique, np.ndarray]] = {}
        for k in sorted(needed, key=rank.__getitem__, reverse=True):
            clique = jt.cliques[k]
            factors = [(clique, self.tables[k] if k == top else self.conditional(k))]
            factors += [messages.pop(c) for c in list(messages) if jt.parent[c] == k]
            if k == top:
                return contract(factors, q)
            keep = tuple(sorted((set(jt.separator(k)) | set(q)) & {a for c, _ in factors for a in c}))
            messages[k] = (keep, contract(factors, keep))
        raise GeneratorError("marginal query could not be contracted (bug)")
