"""Fit a graphical model to noisy marginal measurements: mirror descent in numpy.

Reads no sensitive rows: its inputs are DP measurements (post-processing). This is
Private-PGM's estimator (McKenna, Sheldon & Miklau 2019, Algorithm 1; mbi's
``MirrorDescent`` with Armijo step sizes and the same initial step ``2 / (L * total)``)
on the numpy engine of :mod:`~synthrelease.generators.marginal.graphical`:

    minimise  sum_m  || w_m * mu_m - y_m ||^2 / (2 sigma_m^2)   over the marginal polytope,

where ``mu_m`` is the model's marginal on measurement m's clique, ``w_m`` optional
per-cell weights (a compressed 1-way marginal) and ``y_m`` the noisy counts. Each step
costs one calibration (an accepted step's marginals are reused by the next one). A
previous :class:`Fit` warm-starts the next: its potentials are carried into the larger
model unchanged, so the starting distribution is exactly the previous estimate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.beliefs import Beliefs
from synthrelease.generators.marginal.graphical import Calibrator
from synthrelease.generators.marginal.jtree import Clique, maximal_subset
from synthrelease.generators.marginal.tables import broadcast_shape

logger = logging.getLogger(__name__)
_BLOCK = 50  # steps between convergence checks


@dataclass(frozen=True)
class Measurement:
    """A noisy marginal: ``y ~ w * counts(clique) + N(0, sigma^2)`` per cell (flat, C
    order over the sorted clique); ``weights=None`` means all ones."""

    clique: Clique
    y: np.ndarray
    sigma: float
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if tuple(sorted(self.clique)) != tuple(self.clique) or len(set(self.clique)) != len(
            self.clique
        ):
            raise GeneratorError("a measurement's clique must be sorted, without repeats")
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise GeneratorError("a measurement's sigma must be positive and finite")


@dataclass(frozen=True)
class Fit:
    """An estimated model: potentials on ``calibrator.cliques`` and their beliefs."""

    calibrator: Calibrator
    potentials: tuple[np.ndarray, ...]
    beliefs: Beliefs
    total: float
    loss: float
    alpha: float

    def project(self, attrs: Sequence[int]) -> np.ndarray:
        """The model's marginal on ``attrs`` (sorted axes), scaled to the total."""
        return self.beliefs.project(attrs) * self.total


def model_cliques(d: int, cliques: Sequence[Clique]) -> list[Clique]:
    """Potential cliques for measurements on ``cliques``: the maximal ones, plus a
    singleton for any attribute nothing measures."""
    out = maximal_subset(cliques)
    covered = {a for c in out for a in c}
    return out + [(a,) for a in range(d) if a not in covered]


class _Loss:
    """The quadratic loss, its gradient per potential clique, and its Lipschitz bound."""

    def __init__(
        self, sizes: Sequence[int], cliques: Sequence[Clique], measurements: Sequence[Measurement]
    ) -> None:
        self.plan = []
        blocks = [0.0] * len(cliques)
        for m in measurements:
            options = [i for i, c in enumerate(cliques) if set(m.clique) <= set(c)]
            if not options:
                raise GeneratorError("a measurement lies in no model clique (bug)")
            i = min(options, key=lambda j: math.prod(sizes[a] for a in cliques[j]))
            c = cliques[i]
            axes = tuple(k for k, a in enumerate(c) if a not in m.clique)
            shape = broadcast_shape(sizes, m.clique, c)
            if m.y.size != math.prod(sizes[a] for a in m.clique):
                raise GeneratorError("a measurement's size does not match its clique")
            w = None if m.weights is None else np.asarray(m.weights, float)
            self.plan.append((i, axes, shape, np.asarray(m.y, float), 1.0 / m.sigma**2, w))
            q_norm = 1.0 if w is None else float(np.max(w * w))
            ratio = math.prod(sizes[a] for a in c) / m.y.size
            blocks[i] += q_norm / m.sigma**2 * ratio
        self.lipschitz = max(blocks) if blocks else 1.0
        self.count = len(cliques)

    def __call__(self, mu: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray | float]]:
        loss = 0.0
        grads: list[np.ndarray | float] = [0.0] * self.count
        for i, axes, shape, y, inv_var, w in self.plan:
            m = (mu[i].sum(axis=axes) if axes else mu[i]).ravel()
            r = (m if w is None else w * m) - y
            loss += 0.5 * inv_var * float(r @ r)
            g = inv_var * (r if w is None else w * r)
            grads[i] = grads[i] + g.reshape(shape)
        return loss, grads


Warm = Fit | Sequence[tuple[Clique, np.ndarray]]


def _expand(warm: Warm, cliques: Sequence[Clique], sizes: Sequence[int]) -> list[np.ndarray]:
    """Warm-start log-potentials (a previous fit's, or (clique, table) pairs) re-expressed
    on the new cliques: the same distribution."""
    pairs = zip(warm.calibrator.cliques, warm.potentials) if isinstance(warm, Fit) else warm
    out = [np.zeros(tuple(sizes[a] for a in c)) for c in cliques]
    for old, theta in pairs:
        options = [i for i, c in enumerate(cliques) if set(old) <= set(c)]
        if not options:
            raise GeneratorError("warm start: an old clique fits in no new clique (bug)")
        i = options[0]
        out[i] = out[i] + np.reshape(theta, broadcast_shape(sizes, old, cliques[i]))
    return out


def estimate(
    sizes: Sequence[int],
    measurements: Sequence[Measurement],
    *,
    total: float,
    iters: int,
    warm: Warm | None = None,
    tol: float | None = None,
) -> Fit:
    """Mirror descent (Armijo steps) from ``warm`` (or the uniform model), for ``iters``
    steps, or fewer when ``tol`` is set and a block of 50 steps lowered the loss by less
    than ``tol`` times its value."""
    if not measurements:
        raise GeneratorError("estimation needs at least one measurement")
    cliques = model_cliques(len(sizes), [m.clique for m in measurements])
    cal = Calibrator(sizes, cliques)
    loss_fn = _Loss(sizes, cliques, measurements)
    theta = (
        _expand(warm, cliques, sizes)
        if warm is not None
        else [np.zeros(tuple(sizes[a] for a in c)) for c in cliques]
    )
    beliefs = cal.beliefs(theta)
    mu = cal.potential_marginals(beliefs, total)
    loss, grads = loss_fn(mu)
    alpha = 2.0 / (loss_fn.lipschitz * total)
    if isinstance(warm, Fit):
        alpha = max(alpha, min(warm.alpha, 64 * alpha))
    checkpoint = loss
    for step in range(1, int(iters) + 1):
        theta2 = [t - alpha * g for t, g in zip(theta, grads)]
        beliefs2 = cal.beliefs(theta2)
        mu2 = cal.potential_marginals(beliefs2, total)
        loss2, grads2 = loss_fn(mu2)
        drop = sum(float(np.sum(g * (a - b))) for g, a, b in zip(grads, mu, mu2))
        if loss - loss2 >= 0.5 * alpha * drop:
            theta, beliefs, mu, loss, grads = theta2, beliefs2, mu2, loss2, grads2
            alpha *= 1.01
        else:
            alpha *= 0.5
        if tol is not None and step % _BLOCK == 0:
            if checkpoint - loss <= tol * abs(loss):
                break
            checkpoint = loss
    theta = [np.broadcast_to(t, tuple(sizes[a] for a in c)).copy() for t, c in zip(theta, cliques)]
    return Fit(cal, tuple(theta), beliefs, float(total), float(loss), float(alpha))
