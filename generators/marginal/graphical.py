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

import functools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.jtree import Clique, JunctionTree, build

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_INTERMEDIATE = 2**23  # cells: einsum paths with larger temporaries are not used


def _shape(sizes: Sequence[int], attrs: Clique, within: Clique) -> tuple[int, ...]:
    """Broadcast shape of an array over ``attrs`` inside one over ``within`` (both sorted)."""
    return tuple(sizes[a] if a in attrs else 1 for a in within)


@functools.lru_cache(maxsize=4096)
def _subscripts(within: Clique, keep: Clique) -> str:
    """einsum subscripts summing an array over ``within`` down to ``keep`` (both sorted)."""
    letters = {a: _LETTERS[i % len(_LETTERS)] for i, a in enumerate(within)}
    return "".join(letters[a] for a in within) + "->" + "".join(letters[a] for a in keep)


def sum_to(table: np.ndarray, within: Clique, keep: Clique) -> np.ndarray:
    """Sum a table over ``within`` down to ``keep`` (einsum: several times faster than
    ``ndarray.sum`` over scattered axes)."""
    if keep == within:
        return table
    if len(within) > len(_LETTERS):
        axes = tuple(i for i, a in enumerate(within) if a not in keep)
        return table.sum(axis=axes)
    return np.einsum(_subscripts(within, keep), table)


def contract(factors: Sequence[tuple[Clique, np.ndarray]], out: Clique) -> np.ndarray:
    """sum over everything but ``out`` of the product of ``factors``, each an array whose
    axes are its sorted attribute tuple (einsum with letters assigned locally)."""
    attrs = sorted({a for c, _ in factors for a in c} | set(out))
    if len(attrs) > len(_LETTERS):
        raise GeneratorError("a marginal query spans more than 52 attributes")
    letter = {a: _LETTERS[i] for i, a in enumerate(attrs)}
    spec = ",".join("".join(letter[a] for a in c) for c, _ in factors)
    spec += "->" + "".join(letter[a] for a in out)
    arrays = [x for _, x in factors]
    if len(arrays) == 1:
        return np.einsum(spec, arrays[0])
    path, _ = np.einsum_path(spec, *arrays, optimize=("greedy", _MAX_INTERMEDIATE))
    return np.einsum(spec, *arrays, optimize=path)


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
        # separator of k (with its parent): its broadcast shape inside k and the parent
        self.sep_in_self: dict[int, tuple[int, ...]] = {}
        self.sep_in_parent: dict[int, tuple[int, ...]] = {}
        for k in jt.order[1:]:
            sep = jt.separator(k)
            self.sep_in_self[k] = _shape(self.sizes, sep, jt.cliques[k])
            self.sep_in_parent[k] = _shape(self.sizes, sep, jt.cliques[jt.parent[k]])

    # ------------------------------------------------------------------ inference
    def beliefs(self, potentials: Sequence[np.ndarray]) -> "Beliefs":
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
        root = jt.order[0]
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
        beliefs._potential_sums = [sums[k, c] for c, k in zip(self.cliques, self.home)]
        return beliefs

    def potential_marginals(self, beliefs: "Beliefs", total: float) -> list[np.ndarray]:
        """The model's marginal on each potential clique, scaled to ``total``."""
        return [x * total for x in beliefs._potential_sums]


def _broadcast_sum(factors: list[tuple[Clique, np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """A fresh full-shape array holding the sum of broadcast-shaped ``factors``, added
    pairwise smallest union first, so that few additions run over the full shape."""
    items = [(frozenset(c), x) for c, x in factors]
    if not items:
        return np.zeros(shape)
    while len(items) > 1:
        best = None
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                size = math.prod(max(a, b) for a, b in zip(items[i][1].shape, items[j][1].shape))
                if best is None or size < best[0]:
                    best = (size, i, j)
        _, i, j = best
        (ci, xi), (cj, xj) = items[i], items[j]
        items = [it for n, it in enumerate(items) if n not in (i, j)] + [(ci | cj, xi + xj)]
    out = items[0][1]
    if out.shape != shape or len(factors) == 1:
        out = np.broadcast_to(out, shape).copy()
    return out


def project_all(table: np.ndarray, within: Clique, targets: Sequence[Clique]) -> dict[Clique, np.ndarray]:
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
    held = lambda k: sum(a in jt.cliques[k] for a in q)  # noqa: E731
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
    _potential_sums: list[np.ndarray] = field(default_factory=list, repr=False)

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
                marg = self._projection(k, sep).reshape(_shape(self.sizes, sep, keep_t))
                table = np.divide(table, marg, out=np.zeros_like(table), where=marg > 0)
            factors = [(keep_t, table)] + [messages.pop(c) for c in kids]
            if p < 0:
                return contract(factors, q)
            present = {a for c, _ in factors for a in c}
            out = tuple(sorted((set(q) & present) | set(sep)))
            messages[k] = (out, contract(factors, out))
        raise GeneratorError("marginal query could not be contracted (bug)")
