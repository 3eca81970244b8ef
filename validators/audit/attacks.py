"""The audit's attacks: a score per canary, higher for "more likely included".

- **Marginal generators (MST, AIM), white-box**: the fit's noisy marginals
  (:class:`~synthrelease.generators.marginal.base.NoisyMarginal`, DP outputs kept in
  memory). For each measured marginal, a canary's cell holds the surrogate's count, half
  of the other canaries sharing the cell (each is in by a fair coin) and, if included,
  one more. Its Gaussian log-likelihood ratio is ``(r - 1/2) / var``, with ``r`` the
  noisy count minus the surrogate's count and the other canaries' expectation, and
  ``var`` the noise variance the measurement *shows* (estimated from the cells of at
  most one canary, net of that canary's coin, so a measurement that claims noise but
  adds none is read as exact) plus the other canaries' coin variance. A canary's score sums its cells over every measurement.
- **DP-SGD, white-box**: the fitted MADE's ``direct`` layer, one weight per pair of values
  of two columns (:mod:`~synthrelease.generators.dpsgd.model`). Each time a row is
  sampled (``epochs`` times on average), its gradient moves the weight joining its value
  ``x_j`` (in) to its value ``x_k`` (out, ``j < k``) by ``1 - p(x_k)``, against Gaussian
  noise of ``noise multiplier x clip`` per coordinate; Adam turns a weight that only
  noise moves into a random walk of spread ``lr sqrt(steps)``. Unclipped, a canary's
  push on one weight is about half that spread at the demo spec's epsilon 3; clipped
  (the row's whole gradient scaled to the clip, some ten times below its norm), a tenth
  of that. The DP-SGD canaries (:func:`~.canaries.design_pair_canaries`) hold pairs of
  values the surrogate never holds, so no surrogate row moves their weights. Per canary
  and such pair: the weight (minus its initial value when the generator keeps its plan,
  whose initialisation seed rebuilds it), centred on the other values of column ``k``
  (softmax shifts cancel), standardised among the canaries holding a pair of the same
  two columns with as many sharers; the score sums these, a pair that ``n`` canaries
  hold weighted ``1 / (1 + 0.1 (n - 1))``. The power grows with the number of pairs of
  columns (the demo table's 15 columns give 105, of which a canary gets some 60 absent
  from the surrogate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import AuditError
from synthrelease.generators.marginal.base import NoisyMarginal

EXACT = 1e-4  # the least variance a cell is given (an exact count, one canary)


def marginal_scores(
    measured: Sequence[NoisyMarginal], surrogate: np.ndarray, canaries: np.ndarray
) -> np.ndarray:
    """Each canary's summed log-likelihood ratio over ``measured`` (see the module doc)."""
    if not measured:
        raise AuditError("the fit kept no noisy marginals to audit")
    scores = np.zeros(canaries.shape[0])
    for m in measured:
        size = m.y.size
        base = np.bincount(m.cells(surrogate), minlength=size).astype(float)
        cells = m.cells(canaries)
        sharing = np.bincount(cells, minlength=size)
        residual = m.y - base
        alone = sharing <= 1  # cells of at most one canary: coins add at most 1/4
        shown = (
            max(
                float(np.mean((residual[alone] - sharing[alone] / 2) ** 2 - sharing[alone] / 4)),
                0.0,
            )
            if alone.any()
            else m.sigma**2
        )
        r = residual[cells] - (sharing[cells] - 1) / 2.0
        var = np.maximum(shown + (sharing[cells] - 1) / 4.0, EXACT)
        scores += (r - 0.5) / var
    return scores


SHARED = 0.1  # a pair held by n canaries is weighted 1 / (1 + SHARED (n - 1))
SMALLEST_GROUP = 4  # canaries needed to standardise a (pair of columns, sharers) group


def pair_scores(
    model: Any,
    surrogate: np.ndarray,
    canaries: np.ndarray,
    *,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Each canary's standardised ``direct`` weights over its pairs of values absent from
    the surrogate (DP-SGD; see the module docstring). With ``initial`` (the layer's
    weights before training) the moves, not the weights, are read: the initial draw's
    spread leaves the comparison."""
    direct = getattr(model, "direct", None)
    if direct is None:
        raise AuditError("the fitted model has no direct layer to audit")
    weight = direct.weight.detach().cpu().double().numpy()
    if initial is not None:
        if initial.shape != weight.shape:
            raise AuditError("the initial weights do not match the fitted model")
        weight = weight - initial
    sizes = [int(s) for s in model.sizes]
    offsets = model.offsets.cpu().numpy().astype(np.int64)  # the MADE's one-hot layout
    rows = np.arange(canaries.shape[0])
    scores = np.zeros(canaries.shape[0])
    for j in range(len(sizes)):
        for k in range(j + 1, len(sizes)):
            seen = np.zeros((sizes[j], sizes[k]), dtype=bool)
            seen[surrogate[:, j], surrogate[:, k]] = True
            held = np.zeros((sizes[j], sizes[k]), dtype=np.int64)
            np.add.at(held, (canaries[:, j], canaries[:, k]), 1)
            block = weight[offsets[k] : offsets[k] + sizes[k], offsets[j] + canaries[:, j]]
            value = block[canaries[:, k], rows] - block.mean(0)
            sharers = held[canaries[:, j], canaries[:, k]]
            useful = ~seen[canaries[:, j], canaries[:, k]]
            for n in np.unique(sharers[useful]):
                group = useful & (sharers == n)
                spread = value[group].std()
                if group.sum() >= SMALLEST_GROUP and spread > 0:
                    z = (value[group] - value[group].mean()) / spread
                    scores[group] += z / (1.0 + SHARED * (n - 1))
    return scores


def score_canaries(
    generator: Any, surrogate: np.ndarray, canaries: np.ndarray, canary_rows: pd.DataFrame
) -> tuple[str, np.ndarray]:
    """(attack name, scores) for a fitted generator: marginal generators expose their
    noisy marginals (``measured``), DP-SGD its network (``model``, a MADE)."""
    measured = getattr(generator, "measured", None)
    if measured:
        return "noisy-marginal likelihood ratio (white-box)", marginal_scores(
            measured, surrogate, canaries
        )
    model = getattr(generator, "model", None)
    if model is not None and hasattr(model, "direct"):
        weights = getattr(generator, "initial_direct_weights", None)
        initial = weights() if callable(weights) else None
        name = "MADE direct-layer pair weights (white-box" + (
            ", moves from the initial weights)" if initial is not None else ")"
        )
        return name, pair_scores(model, surrogate, canaries, initial=initial)
    raise AuditError(f"no audit attack for generator {getattr(generator, 'name', '?')!r}")
