"""Distance to closest record (DCR), nearest-neighbour distance ratio (NNDR), near copies.

Each synthetic row is compared with two *equal-size* real references: a sample of the
training rows and a sample of the holdout rows (rows the generator never saw). A
generator that does not memorise is as close to one as to the other, so:

- ``dcr_train_share``: share of synthetic rows closer to the training reference than to
  the holdout reference (ties count one half): about 0.5 unless training rows leak.
- ``nndr_train_share``: the same comparison for the NNDR (nearest / second-nearest
  distance; 0/0 counts as 1). A small NNDR means the row sits next to one isolated
  real row rather than in a dense region: outliers being reproduced.
- ``near_copy_share`` / ``near_copy_holdout_share``: share of synthetic rows within
  :data:`NEAR_COPY_DISTANCE` of a training (holdout) reference row;
  ``near_copy_excess`` is their difference (equal sizes make chance closeness cancel).

Distances are the mean Gower-style distance of :mod:`.encoding` (in [0, 1]).
Pure functions on encoded matrices: no sensitive wrapper is read here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthrelease.validators.encoding import MixedMatrix
from synthrelease.validators.neighbours import nearest

# A near copy: on average within 1% of each column's declared range, or one category
# mismatch in a hundred columns (e.g. on 15 columns: all categories equal and the
# numeric columns together within 15% of one range).
NEAR_COPY_DISTANCE = 0.01
# Its figures are declared (and gated) by validators/checks/distance.py.


def distance_figures(
    *,
    synthetic: MixedMatrix,
    train: MixedMatrix,
    holdout: MixedMatrix,
    rng: np.random.Generator,
    near_copy_distance: float = NEAR_COPY_DISTANCE,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Figures (see the module docstring) and details for the internal report."""
    if train.rows != holdout.rows:
        raise ValueError("the training and holdout references must have the same size")
    if train.rows < 2:
        raise ValueError("the references need at least two rows")
    # Shuffled candidates make ties between equally near rows break at random.
    d_train = _two_nearest(synthetic, train.take(rng.permutation(train.rows)))
    d_hold = _two_nearest(synthetic, holdout.take(rng.permutation(holdout.rows)))
    nndr_train, nndr_hold = _nndr(d_train), _nndr(d_hold)
    near_train = float(np.mean(d_train[:, 0] <= near_copy_distance))
    near_hold = float(np.mean(d_hold[:, 0] <= near_copy_distance))
    figures = {
        "dcr_train_share": _closer_share(d_train[:, 0], d_hold[:, 0]),
        "nndr_train_share": _closer_share(nndr_train, nndr_hold),
        "near_copy_share": near_train,
        "near_copy_holdout_share": near_hold,
        "near_copy_excess": near_train - near_hold,
    }
    details = {
        "synthetic_rows_compared": synthetic.rows,
        "reference_rows": train.rows,
        "near_copy_distance": near_copy_distance,
        "dcr_train_quantiles": _quantiles(d_train[:, 0]),
        "dcr_holdout_quantiles": _quantiles(d_hold[:, 0]),
        "nndr_train_quantiles": _quantiles(nndr_train),
        "nndr_holdout_quantiles": _quantiles(nndr_hold),
    }
    return figures, details


def _two_nearest(queries: MixedMatrix, reference: MixedMatrix) -> np.ndarray:
    dist, _ = nearest(queries, reference, k=2)
    return dist


def _nndr(dist: np.ndarray) -> np.ndarray:
    d1, d2 = dist[:, 0], dist[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 1.0)
    return ratio


def _closer_share(to_train: np.ndarray, to_holdout: np.ndarray) -> float:
    closer = (to_train < to_holdout).astype(float) + 0.5 * (to_train == to_holdout)
    return float(closer.mean())


def _quantiles(values: np.ndarray) -> dict[str, float]:
    qs = np.quantile(values, [0.05, 0.5, 0.95])
    return {"p05": float(qs[0]), "p50": float(qs[1]), "p95": float(qs[2])}
