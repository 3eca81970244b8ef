"""The tree-shaped graphical model MST estimates, its sampler and its stored form.

Reads no sensitive rows: :func:`estimate_tree_model` sees only noisy (DP) measurements,
and a :class:`TreeModel` holds only their post-processing. Sampling uses the caller's
``numpy.random.Generator`` (never the global one, unlike ``mbi``'s own
``synthetic_data``), so a saved and re-loaded model draws identical rows from the same
generator state. Stored form: JSON metadata plus plain float/int arrays (no pickle).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from synthrelease.errors import GeneratorError

logger = logging.getLogger(__name__)


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
        compressed[0] = _draw(np.zeros(num_rows, dtype=np.int64), self.one_way[0][None, :], rng)
        for parent, child, joint in self._steps():
            compressed[child] = _draw(compressed[parent], joint, rng)
        for i in range(d):
            out[i] = _decompress(compressed[i], self.maps[i], rng)
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
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> "TreeModel":
        try:
            d, n_edges, n_cliques = len(meta["sizes"]), len(meta["edges"]), len(meta["cliques"])
            model = cls(
                sizes=tuple(int(s) for s in meta["sizes"]),
                maps=tuple(np.asarray(arrays[f"map_{i}"], dtype=np.int64) for i in range(d)),
                edges=tuple((int(a), int(b)) for a, b in meta["edges"]),
                one_way=tuple(np.asarray(arrays[f"one_way_{i}"], float) for i in range(d)),
                edge_marginals=tuple(np.asarray(arrays[f"edge_{k}"], float) for k in range(n_edges)),
                cliques=tuple(tuple(int(a) for a in c) for c in meta["cliques"]),
                potentials=tuple(np.asarray(arrays[f"potential_{k}"], float) for k in range(n_cliques)),
                total=float(meta["total"]),
            )
        except (KeyError, TypeError, ValueError):
            raise GeneratorError("the stored MST model is incomplete or malformed") from None
        model._steps()  # validates the tree
        return model


def _draw(parents: np.ndarray, joint: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Child codes given parent codes: inverse CDF of P(child | parent) at stratified
    uniforms (random rank + jitter inside each parent group), fully vectorised."""
    n = parents.size
    n_parent, n_child = joint.shape
    joint = np.maximum(joint, 0.0)
    row = joint.sum(axis=1, keepdims=True)
    cond = np.divide(joint, row, out=np.full_like(joint, 1.0 / n_child), where=row > 0)
    cdf = np.cumsum(cond, axis=1)
    cdf[:, -1] = 1.0
    perm = rng.permutation(n)
    order = perm[np.argsort(parents[perm], kind="stable")]
    counts = np.bincount(parents, minlength=n_parent)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[parents[order]]
    u = (rank + rng.random(n)) / np.maximum(counts[parents], 1)
    flat = (cdf + np.arange(n_parent)[:, None]).ravel()
    child = np.searchsorted(flat, parents + u, side="right") - parents * n_child
    return np.clip(child, 0, n_child - 1)


def _decompress(codes: np.ndarray, mapping: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Compressed -> original codes; the merged cell becomes a uniform pick of its members."""
    counts = np.bincount(mapping)
    lookup = np.empty(counts.size, dtype=np.int64)
    lookup[mapping] = np.arange(mapping.size)  # exact for every unmerged cell
    out = lookup[codes]
    for c in np.flatnonzero(counts > 1):
        hit = np.flatnonzero(codes == c)
        if hit.size:
            out[hit] = np.flatnonzero(mapping == c)[rng.integers(0, counts[c], size=hit.size)]
    return out


# --------------------------------------------------------------------------- estimation
def estimate_tree_model(
    sizes: list[int],
    maps: list[np.ndarray],
    edges: list[tuple[int, int]],
    *,
    one_way: tuple[list[np.ndarray], list[np.ndarray], float],
    two_way: tuple[list[np.ndarray], float],
    total: float,
    warm: list[np.ndarray],
    iters: int,
) -> TreeModel:
    """Fit the graphical model to DP measurements with mbi's mirror descent.

    ``one_way = (noisy counts, per-cell weights, sigma)`` on the compressed domain (a
    merged cell of k originals has weight 1/k); ``two_way = (noisy counts, sigma)`` on the
    tree edges; ``warm`` is the independence model used for selection.
    """
    ys1, ws1, sigma1 = one_way
    ys2, sigma2 = two_way
    d = len(sizes)
    if not edges:  # one column: the independence fit is the estimate
        p = np.asarray(warm[0], float)
        return TreeModel((sizes[0],), (maps[0],), (), (p / p.sum(),), (), ((0,),),
                         (np.log(np.maximum(p, 1e-2)),), float(total))
    estimator = _mirror_descent()
    from mbi import CliqueVector, Domain, Factor, LinearMeasurement
    from mbi.marginal_loss import WeightedQuery

    start = time.perf_counter()
    names = [f"c{i}" for i in range(d)]
    domain = Domain(names, sizes)
    measurements = []
    for i, (y, w) in enumerate(zip(ys1, ws1)):
        if np.all(w == 1.0):
            measurements.append(LinearMeasurement(y, (names[i],), stddev=sigma1))
        else:
            c = np.sqrt(w)
            measurements.append(
                LinearMeasurement(y * c, (names[i],), stddev=sigma1, query=WeightedQuery(c))
            )
    for (a, b), y in zip(edges, ys2):
        measurements.append(LinearMeasurement(y, (names[a], names[b]), stddev=sigma2))
    one = [(n,) for n in names]
    tables = {
        (n,): Factor(domain.project((n,)), np.log(np.maximum(np.asarray(x, float), 1e-2)))
        for n, x in zip(names, warm)
    }
    warm_start = CliqueVector(domain, one, tables)
    model = estimator.estimate(
        domain, measurements, known_total=float(total), iters=int(iters), warm_start=warm_start
    )
    # Read the fitted marginals in numpy: mbi's eager projections compile one tiny
    # program per shape.
    fitted = {cl: np.asarray(model.marginals[cl].values, dtype=float) for cl in model.marginals.cliques}
    edge_marginals = tuple(_oriented(fitted, names[a], names[b]) for a, b in edges)
    one_way_marg = tuple(
        next(m.sum(axis=1) if a == i else m.sum(axis=0) for (a, b), m in zip(edges, edge_marginals) if i in (a, b))
        for i in range(d)
    )
    index = {n: i for i, n in enumerate(names)}
    cliques = tuple(tuple(index[a] for a in cl) for cl in model.potentials.cliques)
    potentials = tuple(
        np.asarray(model.potentials[cl].values, dtype=float) for cl in model.potentials.cliques
    )
    logger.info("mst: estimated %d cliques in %.1f s (%d iterations)",
                len(cliques), time.perf_counter() - start, iters)
    return TreeModel(tuple(sizes), tuple(maps), tuple(edges), one_way_marg, edge_marginals,
                     cliques, potentials, float(total))


def _oriented(fitted: dict[tuple[str, ...], np.ndarray], a: str, b: str) -> np.ndarray:
    """The (a, b) marginal, axes in that order, from the fitted clique marginals."""
    if (a, b) in fitted:
        return fitted[a, b]
    if (b, a) in fitted:
        return fitted[b, a].T
    raise GeneratorError("the estimated model lacks a tree edge")


@functools.cache
def _mirror_descent() -> Any:
    """mbi's MirrorDescent, with its set-up and final oracle calls compiled as one program
    each (mbi runs them op by op: ~10 s of tiny compilations on a CPU) and the
    Shafer-Shenoy oracle (about half the compile time of Hugin here, same result)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)
    from mbi import estimation, marginal_oracles

    @dataclasses.dataclass(frozen=True)
    class CompiledMirrorDescent(estimation.MirrorDescent):
        def _init(self, domain, loss_fn, known_total, *, warm_start=None, constraints=()):
            init = super()._init

            def run(lf: Any, total: Any, warm: Any) -> Any:
                return init(domain, lf, total, warm_start=warm, constraints=constraints)

            return jax.jit(run)(loss_fn, known_total, warm_start)

        def _finalize(self, state, known_total, constraints=()):
            finalize = super()._finalize
            return jax.jit(lambda st, total: finalize(st, total, constraints=constraints))(
                state, known_total
            )

    return CompiledMirrorDescent(marginal_oracle=marginal_oracles.message_passing_shafer_shenoy)
