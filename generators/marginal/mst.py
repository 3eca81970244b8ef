"""MST (McKenna, Miklau & Sheldon, "Winning the NIST Contest", JPC 2021) on Private-PGM.

The recipe, with rho = cdp_rho(epsilon, delta) split in thirds (plain arithmetic in
:func:`_split`):

1. measure every 1-way marginal with Gaussian noise (rho/3); cells whose noisy count is
   below 3 sigma are merged into one cell per column (domain compression);
2. select a maximum spanning tree of 2-way marginals with the exponential mechanism
   (Gumbel-max, rho/3): the score of a pair is the L1 distance between its true counts
   and the independence model fitted to the noisy 1-way marginals (sensitivity 1 under
   add/remove of a row);
3. measure the tree's 2-way marginals with Gaussian noise (rho/3);
4. estimate a tree-shaped graphical model from the noisy measurements with ``mbi``
   (mirror descent, warm-started from the independence model of step 2).

**Sensitive rows**: only ``marginal.data.encode_rows`` reads them (the trusted encoder);
:meth:`MSTGenerator.fit` counts them through an ``ExactMarginals`` (in memory or over the
pipeline's code store, chunk by chunk) until the last measurement and drops it; the exact
counts reach only :func:`_measure` (adds
Gaussian noise) and :func:`_select` (exponential mechanism) use. All noise comes from the
:class:`NoiseSource` passed to ``fit``. Everything after that (estimation in
``mst_estimate``, sampling with the caller's generator) is post-processing of DP outputs.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine, PrivacyReport, cdp_rho
from synthrelease.generators.dp_domain import public_count
from synthrelease.generators.marginal.base import MarginalGenerator, MarginalParams, NoisyMarginal
from synthrelease.generators.marginal.compress import compress_map
from synthrelease.generators.marginal.data import ExactMarginals, encode_rows
from synthrelease.generators.marginal.jtree import DisjointSets
from synthrelease.generators.marginal.mst_estimate import estimate_tree_model
from synthrelease.generators.marginal.mst_sampler import TreeModel
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CountedCodes, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.mst")  # private workspace only

# Noise scales are rounded up by this relative margin so that floating-point rounding can
# never make the reported spend exceed the requested epsilon.
_MARGIN = 1e-12


class MSTParams(MarginalParams):
    iters: int = Field(default=2000, ge=1, le=100_000, description="estimation iterations")
    compress: bool = Field(default=True, description="merge 1-way cells below 3 sigma")
    engine: Literal["numpy", "mbi"] = Field(
        default="numpy",
        description="estimation engine: numpy (CPU, no compilation) or "
        "mbi (Private-PGM on JAX, e.g. for a GPU); same algorithm",
    )
    max_model_size: float = Field(
        default=80.0,
        gt=0,
        le=4096,
        description="largest 2-way "
        "marginal (MB of float64) the tree may hold: bigger pairs "
        "are never selected, which bounds memory",
    )


# --------------------------------------------------------------------------- sensitive
def _measure(
    data: ExactMarginals,
    cliques: Sequence[tuple[int, ...]],
    *,
    sigma: float,
    noise: NoiseSource,
) -> list[np.ndarray]:
    """Gaussian mechanism: each marginal's counts plus N(0, sigma^2) per cell."""
    data.prefetch(cliques)  # one pass over the rows for all of them
    out = []
    for clique in cliques:
        x = data.counts(clique)
        out.append(x + noise.normal(sigma, x.size))
    return out


def _select(
    data: ExactMarginals,
    sizes: list[int],
    indep: list[np.ndarray],
    total: float,
    *,
    rho: float,
    noise: NoiseSource,
    max_cells: float = math.inf,
    names: list[str] | None = None,
) -> list[tuple[int, int]]:
    """Exponential mechanism (Gumbel-max), one edge per round, Kruskal-style: a
    maximum spanning tree of the pairs that the independence model fits worst. Pairs
    above ``max_cells`` cells (sizes are DP outputs: public) are never candidates."""
    d = len(sizes)
    pairs = [
        (a, b) for a, b in itertools.combinations(range(d), 2) if sizes[a] * sizes[b] <= max_cells
    ]
    _require_spanning_tree(d, pairs, sizes, names)  # before any budget goes on selection
    score = {}
    data.prefetch(pairs)  # one pass over the rows for every pair
    for a, b in pairs:
        xhat = np.outer(indep[a], indep[b]).ravel() / total
        score[a, b] = float(np.abs(data.counts((a, b)) - xhat).sum())
    eps = _em_epsilon(rho, d)  # each round: eps-DP exponential mechanism = eps^2/8-zCDP
    sets = DisjointSets(d)
    edges: list[tuple[int, int]] = []
    for _ in range(d - 1):
        cand = [e for e in pairs if sets.find(e[0]) != sets.find(e[1])]
        q = np.array([score[e] for e in cand])
        a, b = cand[int(np.argmax(eps / 2.0 * q + noise.gumbel(len(cand))))]  # sensitivity 1
        sets.union(a, b)
        edges.append((a, b))
    return edges


# --------------------------------------------------------------------------- public maths
def _require_spanning_tree(
    d: int, pairs: list[tuple[int, int]], sizes: list[int], names: list[str] | None
) -> None:
    """The allowed pairs must connect every column (public: sizes are DP outputs)."""
    sets = DisjointSets(d)
    for a, b in pairs:
        sets.union(a, b)
    if sets.count() > 1:
        big = max(range(d), key=lambda i: sizes[i])
        label = names[big] if names else str(big)
        raise GeneratorError(
            f"mst: no spanning tree fits max_model_size: column {label!r} has {sizes[big]} "
            "cells after compression; declare fewer categories or bins (or an 'other' "
            "bucket), or raise max_model_size"
        )


def _split(rho: float, d: int) -> tuple[float, float, float]:
    """Budget plan (1-way, selection, 2-way). With two columns the tree is forced, so
    selection is free; with one there is nothing but the 1-way marginal."""
    if d == 1:
        return rho, 0.0, 0.0
    if d == 2:
        return rho / 2, 0.0, rho / 2
    return rho / 3, rho / 3, rho / 3


def _gaussian_sigma(rho: float, count: int) -> float:
    """Noise scale for ``count`` sensitivity-1 marginals costing ``rho`` together."""
    return math.sqrt(count / (2.0 * rho)) * (1 + _MARGIN)


def _em_epsilon(rho: float, d: int) -> float:
    """Per-round epsilon of the d - 1 selection rounds costing ``rho`` together."""
    return math.sqrt(8.0 * rho / (d - 1)) * (1 - _MARGIN)


def _fit_independent(y: np.ndarray, weight: np.ndarray, total: float) -> np.ndarray:
    """argmin sum_i w_i (x_i - y_i)^2 over x >= 0, sum x = total (weighted simplex
    projection, by bisection on the multiplier): the 1-way model mbi would estimate."""

    def mass(t: float) -> float:
        return float(np.maximum(y - t / weight, 0.0).sum())

    lo, hi = -1.0, 1.0
    while mass(lo) < total:
        lo *= 2.0
    while mass(hi) > total:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        lo, hi = (mid, hi) if mass(mid) > total else (lo, mid)
    return np.maximum(y - hi / weight, 0.0)


def _total(ys: list[np.ndarray], sigmas: list[float]) -> float:
    """Inverse-variance weighted estimate of the row count from noisy marginals (DP),
    rounded to an integer >= 1 (public grid) before the model uses or stores it."""
    var = np.array([s**2 * y.size for y, s in zip(ys, sigmas)])
    sums = np.array([y.sum() for y in ys])
    return public_count(np.sum(sums / var) / np.sum(1.0 / var))


# --------------------------------------------------------------------------- generator
class MSTGenerator(MarginalGenerator):
    """MST over the declared, discretised domain. See the module docstring."""

    name = "mst"
    Params = MSTParams
    # the estimation runs after the last measurement and the audit reads the measurements
    audit_params = {"iters": 1}
    params: MSTParams
    model_class = TreeModel

    def __init__(
        self,
        columns: Mapping[str, Column],
        *,
        epsilon: float,
        delta: float,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(columns, epsilon=epsilon, delta=delta, params=params)
        self._init_domain()
        self.model: TreeModel | None = None

    def fit(
        self, table: SensitiveTable | SensitiveCodes | CountedCodes, *, noise: NoiseSource
    ) -> PrivacyReport:
        """READS SENSITIVE ROWS (once, via ``marginal.data.encode_rows``); spends exactly
        cdp_rho(epsilon, delta) with noise from ``noise``; never calls ``len(table)``."""
        self._check_fit_args(table, noise)
        start = time.perf_counter()
        p = self.params
        rho = cdp_rho(epsilon=self.epsilon, delta=self.delta)
        lines: list[BudgetLine] = []
        if p.quantile_edges:  # opt-in DP bin edges: a share of rho, one line
            lines.append(self._learn_edges(table, rho=rho * p.quantile_share, noise=noise))
            rho -= lines[-1].rho
        disc = self.discretiser
        sizes = list(disc.sizes.values())
        d = len(sizes)
        data = ExactMarginals(encode_rows(table, disc), sizes)  # READS SENSITIVE ROWS
        rho1, rho_sel, rho2 = _split(rho, d)

        sigma1 = _gaussian_sigma(rho1, d)
        y1 = _measure(data, [(i,) for i in range(d)], sigma=sigma1, noise=noise)
        total1 = _total(y1, [sigma1] * d)
        maps = [compress_map(y, 3 * sigma1) if p.compress else np.arange(y.size) for y in y1]
        csizes = [int(m.max()) + 1 for m in maps]
        cdata = data.compressed(maps)
        cy1 = [np.bincount(m, weights=y, minlength=s) for m, y, s in zip(maps, y1, csizes)]
        cw1 = [1.0 / np.bincount(m, minlength=s) for m, s in zip(maps, csizes)]  # merged: 1/k
        indep = [_fit_independent(y, w, total1) for y, w in zip(cy1, cw1)]
        logger.info("mst: 1-way measured; compressed domain %s -> %s", sizes, csizes)

        edges = [(0, 1)] if d == 2 else []
        if d > 2:
            edges = _select(
                cdata,
                csizes,
                indep,
                total1,
                rho=rho_sel,
                noise=noise,
                max_cells=p.max_model_size * 2**17,
                names=disc.names,
            )
        sigma2 = _gaussian_sigma(rho2, len(edges)) if edges else 0.0
        y2 = _measure(cdata, edges, sigma=sigma2, noise=noise) if edges else []
        cdata.release()  # nothing below reads rows
        self.measured = tuple(
            NoisyMarginal((i,), (np.arange(s),), y, sigma1)
            for i, (s, y) in enumerate(zip(sizes, y1))
        ) + tuple(NoisyMarginal(e, (maps[e[0]], maps[e[1]]), y, sigma2) for e, y in zip(edges, y2))
        logger.info("mst: selected tree %s", [(disc.names[a], disc.names[b]) for a, b in edges])

        measured = time.perf_counter()
        total = _total(y1 + y2, [sigma1] * d + [sigma2] * len(edges))
        self.model = estimate_tree_model(
            csizes,
            maps,
            edges,
            one_way=(cy1, cw1, sigma1),
            two_way=(y2, sigma2),
            total=total,
            warm=indep,
            iters=p.iters,
            engine=p.engine,
        )
        lines.append(BudgetLine("1-way marginals", d / (2 * sigma1**2), "Gaussian"))
        if d > 2:
            eps_em = _em_epsilon(rho_sel, d)
            lines.append(
                BudgetLine(
                    "tree selection", (d - 1) * eps_em**2 / 8, "exponential mechanism (Gumbel-max)"
                )
            )
        if edges:
            lines.append(BudgetLine("2-way marginals", len(edges) / (2 * sigma2**2), "Gaussian"))
        report = PrivacyReport.from_lines(lines, delta=self.delta)
        # profiling only, never logged: reading rows + measuring + selecting, estimating
        self.timings = {
            "measure_select_s": measured - start,
            "estimate_s": time.perf_counter() - measured,
        }
        self.report = report
        logger.info("mst: fitted, epsilon %.4g", report.epsilon)
        # the run time grows with the (exact) row count: not DP, private log only
        private_logger.info("mst: fitted in %.1f s", time.perf_counter() - start)
        return report
