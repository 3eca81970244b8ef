"""MST's estimation step: a tree-shaped graphical model fitted to noisy marginals with
Private-PGM (``mbi``) mirror descent.

Reads no sensitive rows: it sees only DP measurements (post-processing). JAX and mbi are
imported on first use, with float64 on and the persistent compilation cache off.

Speed (CPU, 2 cores): mbi runs the estimator's set-up and final marginal computation op
by op, which compiles hundreds of tiny XLA programs (~10 s here). On a tree both are
exact and cheap in numpy (:func:`tree_marginals`, below), so
:func:`_mirror_descent` overrides them and only mbi's fused iteration loop is compiled
(Shafer-Shenoy oracle: about half Hugin's compile time here, same iterates).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.estimation import Measurement, estimate
from synthrelease.generators.marginal.mst_sampler import TreeModel

logger = logging.getLogger(__name__)


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
    engine: str = "numpy",
) -> TreeModel:
    """Fit the model to DP measurements on the compressed domain.

    ``one_way = (noisy counts, per-cell weights, sigma)`` (a merged cell of k originals
    has weight 1/k); ``two_way = (noisy counts, sigma)`` on the tree ``edges`` (a < b);
    ``warm`` is the independence model used for selection: the warm start. ``engine``:
    ``numpy`` (the marginal engine of ``estimation.py``: no compilation, ~10x faster on
    CPU) or ``mbi`` (Private-PGM's JAX estimator: for a GPU). Same algorithm, same start.
    """
    ys1, ws1, sigma1 = one_way
    ys2, sigma2 = two_way
    d = len(sizes)
    if not edges:  # one column: the independence fit is the estimate
        p = np.asarray(warm[0], float)
        return TreeModel(
            (sizes[0],),
            (maps[0],),
            (),
            (p / p.sum(),),
            (),
            ((0,),),
            (np.log(np.maximum(p, 1e-2)),),
            float(total),
        )
    if any(a >= b for a, b in edges):
        raise GeneratorError("mst: tree edges must be ordered pairs (a < b)")
    if engine == "numpy":
        return _numpy_tree(
            sizes,
            maps,
            edges,
            one_way=one_way,
            two_way=two_way,
            total=total,
            warm=warm,
            iters=iters,
        )
    import jax  # heavy (JAX, mbi): imported only for engine='mbi'

    jax.config.update("jax_enable_x64", True)  # before mbi is imported: it warns otherwise
    jax.config.update("jax_enable_compilation_cache", False)
    estimator = _mirror_descent()
    from mbi import CliqueVector, Domain, Factor, LinearMeasurement  # heavy: see above

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
                LinearMeasurement(y * c, (names[i],), stddev=sigma1, query=_ScaledQuery(tuple(c)))
            )
    cliques = [(names[a], names[b]) for a, b in edges]
    for clique, y in zip(cliques, ys2):
        measurements.append(LinearMeasurement(y, clique, stddev=sigma2))

    # Warm start: the independence model's log-potentials, each column's on one edge.
    logs = [np.log(np.maximum(np.asarray(x, float), 1e-2)) for x in warm]
    owner: dict[int, int] = {}
    tables = {}
    for k, (a, b) in enumerate(edges):
        table = np.zeros((sizes[a], sizes[b]))
        if owner.setdefault(a, k) == k:
            table += logs[a][:, None]
        if owner.setdefault(b, k) == k:
            table += logs[b][None, :]
        tables[cliques[k]] = Factor(domain.project(cliques[k]), table)
    warm_start = CliqueVector(domain, cliques, tables)

    model = estimator.estimate(
        domain, measurements, known_total=float(total), iters=int(iters), warm_start=warm_start
    )
    if not set(cliques) == set(model.marginals.cliques) == set(model.potentials.cliques):
        raise GeneratorError("mst: the estimated model is not the selected tree")
    fitted = {c: np.asarray(model.marginals[c].values, float) for c in cliques}
    potentials = {c: np.asarray(model.potentials[c].values, float) for c in cliques}
    logger.info(
        "mst: estimated %d cliques in %.1f s (%d iterations)",
        len(cliques),
        time.perf_counter() - start,
        iters,
    )
    return _tree_model(
        sizes,
        maps,
        edges,
        owner,
        tuple(fitted[cl] for cl in cliques),
        tuple(potentials[cl] for cl in cliques),
        total,
    )


def _tree_model(
    sizes: list[int],
    maps: list[np.ndarray],
    edges: list[tuple[int, int]],
    owner: dict[int, int],
    edge_marginals: tuple[np.ndarray, ...],
    potentials: tuple[np.ndarray, ...],
    total: float,
) -> TreeModel:
    """The fitted tree (either engine): each column's 1-way marginal from its owner edge."""
    if not all(np.isfinite(m).all() for m in edge_marginals):
        raise GeneratorError("mst: the estimation diverged (non-finite marginals)")
    one_way_marg = tuple(
        edge_marginals[owner[i]].sum(axis=1 if edges[owner[i]][0] == i else 0)
        for i in range(len(sizes))
    )
    return TreeModel(
        tuple(sizes),
        tuple(maps),
        tuple(edges),
        one_way_marg,
        edge_marginals,
        tuple(edges),
        potentials,
        float(total),
    )


def _numpy_tree(
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
    """The same estimation on the numpy engine (see :mod:`.estimation`)."""
    start = time.perf_counter()
    ys1, ws1, sigma1 = one_way
    ys2, sigma2 = two_way
    measurements = [Measurement(e, y, sigma2) for e, y in zip(edges, ys2)]
    for i, (y, w) in enumerate(zip(ys1, ws1)):
        c = None if np.all(w == 1.0) else np.sqrt(w)
        measurements.append(Measurement((i,), y if c is None else y * c, sigma1, c))
    owner: dict[int, int] = {}
    init = []
    for k, (a, b) in enumerate(edges):  # independence model, each column on one edge
        table = np.zeros((sizes[a], sizes[b]))
        for i, axis in ((a, (slice(None), None)), (b, (None, slice(None)))):
            if owner.setdefault(i, k) == k:
                table = table + np.log(np.maximum(np.asarray(warm[i], float), 1e-2))[axis]
        init.append(((a, b), table))
    fit = estimate(sizes, measurements, total=float(total), iters=int(iters), warm=init)
    if set(fit.calibrator.cliques) != set(edges):
        raise GeneratorError("mst: the estimated model is not the selected tree")
    theta = dict(zip(fit.calibrator.cliques, fit.potentials))
    logger.info(
        "mst: estimated %d cliques in %.1f s (%d iterations, numpy)",
        len(edges),
        time.perf_counter() - start,
        iters,
    )
    return _tree_model(
        sizes,
        maps,
        edges,
        owner,
        tuple(fit.project(e) for e in edges),
        tuple(theta[e] for e in edges),
        total,
    )


@dataclass(frozen=True)
class _ScaledQuery:
    """``datavector * scale`` for a compressed 1-way marginal (a merged cell of k originals
    is scaled by 1/sqrt(k)). Unlike mbi's ``WeightedQuery`` it compares by value, so an
    identical structure reuses the compiled estimator instead of recompiling."""

    scale: tuple[float, ...]

    def __call__(self, factor: Any) -> Any:
        return factor.datavector() * np.asarray(self.scale)

    def op_norm_sq(self) -> float:
        return max(x * x for x in self.scale)


@functools.cache
def _mirror_descent() -> Any:
    """mbi's MirrorDescent (Armijo step sizes), with the initial and final marginals of a
    tree computed exactly in numpy instead of op by op in JAX (see the module docstring)."""
    import jax.numpy as jnp  # heavy (JAX, mbi): imported only for engine='mbi'
    from mbi import CliqueVector, Factor, MarkovRandomField, estimation, marginal_oracles

    def marginals(potentials: Any, total: float) -> Any:
        domain, cliques = potentials.domain, list(potentials.cliques)
        index = {name: i for i, name in enumerate(domain.attributes)}
        edges = [(index[a], index[b]) for a, b in cliques]
        logs = [np.asarray(potentials[cl].values, float) for cl in cliques]
        values = tree_marginals(list(domain.shape), edges, logs, float(total))
        tables = {cl: Factor(domain.project(cl), jnp.asarray(v)) for cl, v in zip(cliques, values)}
        return CliqueVector(domain, cliques, tables)

    def is_tree(domain: Any, cliques: Any) -> bool:
        return all(len(cl) == 2 for cl in cliques) and len(cliques) == len(domain) - 1

    @dataclasses.dataclass(frozen=True)
    class TreeMirrorDescent(estimation.MirrorDescent):
        def _init(self, domain, loss_fn, known_total, *, warm_start=None, constraints=()):
            usable = isinstance(warm_start, CliqueVector) and set(warm_start.cliques) == set(
                loss_fn.cliques
            )
            if constraints or not usable or not is_tree(domain, loss_fn.cliques):
                return super()._init(
                    domain, loss_fn, known_total, warm_start=warm_start, constraints=constraints
                )
            tables = {cl: warm_start[cl] for cl in loss_fn.cliques}
            potentials = CliqueVector(domain, loss_fn.cliques, tables)
            alpha = 2.0 / (loss_fn.lipschitz * known_total)  # as mbi's MirrorDescent
            return estimation.MirrorDescentState(
                marginals(potentials, known_total),
                potentials,
                alpha,
                jnp.asarray(np.float64(np.inf)),  # only read by tol-based early stopping
            )

        def _finalize(self, state, known_total, constraints=()):
            pot = state.potentials
            if constraints or not is_tree(pot.domain, pot.cliques):
                return super()._finalize(state, known_total, constraints=constraints)
            return MarkovRandomField(
                potentials=pot, marginals=marginals(pot, known_total), total=known_total
            )

    return TreeMirrorDescent(marginal_oracle=marginal_oracles.message_passing_shafer_shenoy)


# --------------------------------------------------------------------------- exact tree inference
def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def tree_marginals(
    sizes: Sequence[int],
    edges: Sequence[tuple[int, int]],
    log_potentials: Sequence[np.ndarray],
    total: float,
) -> list[np.ndarray]:
    """Exact edge marginals (scaled to ``total``) of a tree-shaped model with log-space
    pairwise potentials ``log_potentials[k]`` of shape ``(sizes[a], sizes[b])`` for
    ``edges[k] = (a, b)``: two passes of sum-product message passing, in numpy."""
    adjacent: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(sizes))}
    for k, (a, b) in enumerate(edges):
        adjacent[a].append((b, k))
        adjacent[b].append((a, k))
    order, up = [0], {0: (-1, -1)}
    for u in order:
        for v, k in adjacent[u]:
            if v not in up:
                up[v] = (u, k)
                order.append(v)
    if len(order) != len(sizes) or len(edges) != len(sizes) - 1:
        raise GeneratorError("the model's edges do not form a spanning tree")
    message: dict[tuple[int, int], np.ndarray] = {}  # (edge, into node) -> log message

    def into(node: int, skip: int) -> np.ndarray:
        out = np.zeros(sizes[node])
        for _, k in adjacent[node]:
            if k != skip:
                out = out + message[k, node]
        return out

    def send(k: int, src: int, dst: int) -> None:
        table = log_potentials[k] if edges[k][0] == src else log_potentials[k].T
        message[k, dst] = _logsumexp(table + into(src, k)[:, None], axis=0)

    for v in reversed(order[1:]):
        send(up[v][1], v, up[v][0])
    for v in order[1:]:
        send(up[v][1], up[v][0], v)
    result = []
    for k, (a, b) in enumerate(edges):
        logp = log_potentials[k] + into(a, k)[:, None] + into(b, k)[None, :]
        p = np.exp(logp - logp.max())
        result.append(p * (total / p.sum()))
    return result
