"""AIM's rounds (McKenna, Mullins, Sheldon & Miklau, "AIM: An Adaptive and Iterative
Mechanism for Differentially Private Synthetic Data", VLDB 2022, Algorithm 1).

The budget arithmetic is plain and up front (:class:`Plan`): with ``T`` planned rounds
(default ``16 d``) and measurement share ``a = 0.9``, a round costs
``1 / (2 sigma^2)`` (Gaussian) plus ``eps^2 / 8`` (exponential mechanism) zCDP, starting
from ``sigma = sqrt(T / (2 a rho))`` and ``eps = sqrt(8 (1 - a) rho / T)``; all 1-way
marginals are measured first; when a new measurement barely moved the model, sigma
halves and eps doubles (annealing); the last round spends exactly what is left.

**Sensitive**: only :func:`run_rounds` touches exact counts (an ``ExactMarginals``), and
only through :func:`_select` (exponential mechanism, Gumbel-max: each candidate's score
``w_r (||x_r - model_r||_1 - sqrt(2/pi) sigma n_r)`` has sensitivity ``w_r``, the scale
uses the largest weight) and the Gaussian noise of :func:`_measure`. All noise comes from
the caller's :class:`NoiseSource`; everything else is post-processing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine
from synthrelease.generators.dp_domain import public_count
from synthrelease.generators.marginal.aim_workload import affordable
from synthrelease.generators.marginal.data import ExactMarginals
from synthrelease.generators.marginal.estimation import Fit, Measurement, estimate
from synthrelease.generators.marginal.jtree import Clique
from synthrelease.generators.noise import NoiseSource

logger = logging.getLogger(__name__)
_MARGIN = 1e-12  # sigma rounded up, eps rounded down: floating point never overspends
_BIAS = math.sqrt(2.0 / math.pi)  # E|N(0, 1)|


@dataclass
class Plan:
    """AIM's budget schedule. ``rho`` is this mechanism's whole zCDP budget."""

    rho: float
    rounds: int
    share: float = 0.9
    charges: list[float] = field(default_factory=list)
    sigma: float = field(init=False)
    eps: float = field(init=False)

    def __post_init__(self) -> None:
        if not (self.rho > 0 and self.rounds >= 1 and 0 < self.share < 1):
            raise GeneratorError("aim: the budget plan needs rho > 0, rounds >= 1")
        self.sigma = math.sqrt(self.rounds / (2 * self.share * self.rho)) * (1 + _MARGIN)
        self.eps = math.sqrt(8 * (1 - self.share) * self.rho / self.rounds) * (1 - _MARGIN)

    @property
    def used(self) -> float:
        return math.fsum(self.charges)

    def charge(self, rho: float) -> float:
        self.charges.append(rho)
        return rho

    @property
    def round_cost(self) -> float:
        return 0.5 / self.sigma**2 + self.eps**2 / 8

    def next_round(self, *, final: bool = False) -> bool:
        """Charge one round; True if it is the last (it then spends all that is left):
        when ``final`` or when less than two rounds' worth is left."""
        left = self.rho - self.used
        last = final or left < 2 * self.round_cost
        if last:  # what is left, less a hair so that rounding can never overspend
            left -= _MARGIN * self.rho
            self.sigma = math.sqrt(1 / (2 * self.share * left)) * (1 + _MARGIN)
            self.eps = math.sqrt(8 * (1 - self.share) * left) * (1 - _MARGIN)
        self.charge(self.round_cost)
        return last

    def anneal(self) -> None:
        self.sigma /= 2
        self.eps *= 2


def _measure(
    data: ExactMarginals, clique: Clique, *, sigma: float, noise: NoiseSource
) -> np.ndarray:
    """Gaussian mechanism: exact counts plus N(0, sigma^2) per cell."""
    x = data.counts(clique)
    return x + noise.normal(sigma, x.size)


def _select(
    data: ExactMarginals,
    fit: Fit,
    cands: Mapping[Clique, float],
    *,
    sigma: float,
    eps: float,
    noise: NoiseSource,
) -> Clique:
    """Exponential mechanism (Gumbel-max) over the worst-approximated candidates."""
    cliques = list(cands)
    weights = np.array([cands[c] for c in cliques])
    scores = np.empty(len(cliques))
    for i, c in enumerate(cliques):
        x = data.counts(c)
        scores[i] = weights[i] * (np.abs(x - fit.project(c).ravel()).sum() - _BIAS * sigma * x.size)
    scale = eps / (2.0 * float(weights.max()))
    return cliques[int(np.argmax(scale * scores + noise.gumbel(len(cliques))))]


@dataclass
class Outcome:
    fit: Fit
    measurements: list[Measurement]
    lines: list[BudgetLine]
    total: float
    seconds: dict[str, float] = field(default_factory=dict)  # select / estimate (profiling)


def run_rounds(
    data: ExactMarginals,
    first: Sequence[Measurement],
    totals: list[tuple[float, float]],
    *,
    plan: Plan,
    cands: Mapping[Clique, float],
    max_cells: float,
    iters: int,
    tol: float | None = None,
    noise: NoiseSource,
    name: Callable[[Clique], str],
    max_rounds: int | None = None,
) -> Outcome:
    """AIM's adaptive rounds after the 1-way measurements ``first`` (already charged to
    ``plan``). ``totals`` holds (noisy sum, variance) pairs for the row-count estimate."""
    sizes = data.sizes
    measurements = list(first)

    def total() -> float:  # DP row-count estimate, rounded to an integer (public grid)
        weights = math.fsum(1 / v for _, v in totals)
        return public_count(math.fsum(s / v for s, v in totals) / weights)

    seconds = {"select_s": 0.0, "estimate_s": 0.0}
    clock = time.perf_counter()
    fit = estimate(sizes, measurements, total=total(), iters=iters, tol=tol)
    seconds["estimate_s"] += time.perf_counter() - clock
    lines: list[BudgetLine] = []
    t, last = 0, False
    while not last:
        t += 1
        last = plan.next_round(final=max_rounds is not None and t >= max_rounds)
        sigma, eps = plan.sigma, plan.eps
        limit = max_cells * plan.used / plan.rho
        clock = time.perf_counter()
        small = affordable(cands, sizes, [m.clique for m in measurements], limit_cells=limit)
        clique = _select(data, fit, small, sigma=sigma, eps=eps, noise=noise)
        y = _measure(data, clique, sigma=sigma, noise=noise)
        before = fit.project(clique).ravel()
        measurements.append(Measurement(clique, y, sigma))
        totals.append((float(y.sum()), sigma**2 * y.size))
        seconds["select_s"] += time.perf_counter() - clock
        clock = time.perf_counter()
        fit = estimate(sizes, measurements, total=total(), iters=iters, warm=fit, tol=tol)
        seconds["estimate_s"] += time.perf_counter() - clock
        moved = float(np.abs(fit.project(clique).ravel() - before).sum())
        lines.append(
            BudgetLine(f"round {t}: select", eps**2 / 8, "exponential mechanism (Gumbel-max)")
        )
        lines.append(BudgetLine(f"round {t}: measure {name(clique)}", 0.5 / sigma**2, "Gaussian"))
        logger.debug("aim: round %d measured %s (sigma %.3g)", t, name(clique), sigma)
        if not last and moved <= _BIAS * sigma * y.size:
            plan.anneal()
    return Outcome(fit, measurements, lines, total(), seconds)
