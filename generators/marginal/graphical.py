"""The marginal engine: exact inference in discrete graphical models, in numpy.

Reads no sensitive rows: it computes with log-potentials and noisy (DP) measurements
only. :class:`Calibrator` holds the plan for one model structure (which potential goes
to which junction-tree clique, which axes each message sums out) and turns
log-potentials into calibrated clique beliefs with two passes of log-space message
passing (Hugin schedule). :class:`~synthrelease.generators.marginal.beliefs.Beliefs`
answers marginal queries from them; :mod:`~synthrelease.generators.marginal.tables`
holds the array operations both use.

Why not mbi's JAX oracles on CPU: they compile an XLA program per model structure, and
AIM changes the structure every round (seconds of compilation per round on two cores);
these numpy passes need no compilation, and cost a few passes over the junction tree's
cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.beliefs import Beliefs
from synthrelease.generators.marginal.jtree import Clique, JunctionTree, build
from synthrelease.generators.marginal.tables import broadcast_shape, sum_to


class Calibrator:
    """Inference plan for log-potentials on fixed ``cliques`` over domain ``sizes``."""

    def __init__(
        self, sizes: Sequence[int], cliques: Sequence[Clique], tree: JunctionTree | None = None
    ) -> None:
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
        self.pot_shapes = [
            broadcast_shape(self.sizes, c, jt.cliques[k]) for c, k in zip(self.cliques, self.home)
        ]
        self.children: list[list[int]] = [[] for _ in jt.cliques]
        for k in jt.order[1:]:
            self.children[jt.parent[k]].append(k)
        # separator of k (with its parent): its broadcast shape inside k and the parent
        self.sep_in_self: dict[int, tuple[int, ...]] = {}
        self.sep_in_parent: dict[int, tuple[int, ...]] = {}
        for k in jt.order[1:]:
            sep = jt.separator(k)
            self.sep_in_self[k] = broadcast_shape(self.sizes, sep, jt.cliques[k])
            self.sep_in_parent[k] = broadcast_shape(self.sizes, sep, jt.cliques[jt.parent[k]])

    # ------------------------------------------------------------------ inference
    def beliefs(self, potentials: Sequence[np.ndarray]) -> Beliefs:
        """Calibrated, normalised clique tables for log-potentials (one per clique).

        Collect (leaves first): ``e_k = exp(b_k - max b_k)``, where ``b_k`` is the clique's
        log-potentials plus its children's log-messages (summed smallest-first, see
        :func:`_broadcast_sum`), and ``s_k`` = e_k summed to the separator; the log-message
        up is ``log s_k + max b_k``. Distribute (root first): ``P(k) = e_k * P(sep) / s_k``,
        P(sep) summed from the parent's final table (the separator message is constant
        over the axes summed out). Each final table is then summed down, sharing partial
        sums (:func:`project_all`), to its potentials' cliques and its children's separators.
        """
        jt = self.tree
        homed: list[list[tuple[Clique, np.ndarray]]] = [[] for _ in jt.cliques]
        for c, theta, k, shape in zip(self.cliques, potentials, self.home, self.pot_shapes):
            homed[k].append((c, np.reshape(theta, shape)))
        e: list[np.ndarray] = [np.empty(0)] * len(jt.cliques)
        s: dict[int, np.ndarray] = {}
        up: dict[int, tuple[Clique, np.ndarray]] = {}
        for k in reversed(jt.order):  # collect: leaves first
            clique = jt.cliques[k]
            factors = homed[k] + [up.pop(c) for c in self.children[k]]
            b = _broadcast_sum(factors, self.jt_shapes[k])
            top = float(b.max())
            if not math.isfinite(top):
                raise GeneratorError("graphical model inference diverged (non-finite potentials)")
            e[k] = np.exp(np.subtract(b, top, out=b), out=b)
            if jt.parent[k] < 0:
                continue
            sep = jt.separator(k)
            s_k = sum_to(e[k], clique, sep)
            if s_k.min() > 1e-250:
                log_up = np.log(s_k) + top
            else:  # a separator slice underflowed: rebuild, scaling each slice by its max
                b = _broadcast_sum(factors, self.jt_shapes[k])
                axes = tuple(i for i, a in enumerate(clique) if a not in sep)
                slice_top = b.max(axis=axes, keepdims=True)
                e[k] = np.exp(np.subtract(b, slice_top, out=b), out=b)
                s_k = sum_to(e[k], clique, sep)
                log_up = np.log(s_k).reshape(slice_top.shape) + slice_top
            up[k] = (sep, log_up.reshape(self.sep_in_parent[k]))
            s[k] = s_k.reshape(self.sep_in_self[k])
        tables: list[np.ndarray] = [np.empty(0)] * len(jt.cliques)
        sums: dict[tuple[int, Clique], np.ndarray] = {}
        for k in jt.order:  # distribute: root first
            p = jt.parent[k]
            if p < 0:
                tables[k] = np.divide(e[k], e[k].sum(), out=e[k])
            else:
                sep_marginal = sums[p, jt.separator(k)].reshape(self.sep_in_self[k])
                tables[k] = np.multiply(e[k], sep_marginal / s[k], out=e[k])
            targets = [c for c, _ in homed[k]] + [jt.separator(c) for c in self.children[k]]
            for t, table in project_all(tables[k], jt.cliques[k], targets).items():
                sums[k, t] = table
        beliefs = Beliefs(self.sizes, jt, tables)
        beliefs.potential_sums = [sums[k, c] for c, k in zip(self.cliques, self.home)]
        return beliefs

    def potential_marginals(self, beliefs: Beliefs, total: float) -> list[np.ndarray]:
        """The model's marginal on each potential clique, scaled to ``total``."""
        return [x * total for x in beliefs.potential_sums]


def _broadcast_sum(factors: list[tuple[Clique, np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """A fresh full-shape array holding the sum of broadcast-shaped ``factors``, added
    pairwise smallest union first, so that few additions run over the full shape."""
    items = [(frozenset(c), x) for c, x in factors]
    if not items:
        return np.zeros(shape)
    while len(items) > 1:
        best: tuple[int, int, int] | None = None
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                size = math.prod(max(a, b) for a, b in zip(items[i][1].shape, items[j][1].shape))
                if best is None or size < best[0]:
                    best = (size, i, j)
        assert best is not None  # two or more items: some pair was compared
        _, i, j = best
        (ci, xi), (cj, xj) = items[i], items[j]
        items = [it for n, it in enumerate(items) if n not in (i, j)] + [(ci | cj, xi + xj)]
    out = items[0][1]
    if out.shape != shape or len(factors) == 1:
        out = np.broadcast_to(out, shape).copy()
    return out


def project_all(
    table: np.ndarray, within: Clique, targets: Sequence[Clique]
) -> dict[Clique, np.ndarray]:
    """``{t: sum_to(table, within, t)}`` for every target, sharing partial sums: the
    largest attribute that two or more targets lack is summed out once for all of them."""
    todo = list(dict.fromkeys(tuple(t) for t in targets))
    out: dict[Clique, np.ndarray] = {}
    while todo:
        lacking = [a for a in within if sum(a not in t for t in todo) >= 2]
        if len(todo) == 1 or not lacking or table.size <= 4096:
            out.update({t: sum_to(table, within, t) for t in todo})
            return out
        x = max(lacking, key=lambda a: table.shape[within.index(a)])
        group = [t for t in todo if x not in t]
        rest = tuple(a for a in within if a != x)
        out.update(project_all(sum_to(table, within, rest), rest, group))
        todo = [t for t in todo if x in t]
    return out
