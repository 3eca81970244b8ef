"""Membership inference: a DOMIAS-style density-ratio attack (van Breugel et al. 2023).

The attacker holds the synthetic table and a *reference* sample of the population (real
rows that are not in the training set) and scores a candidate row ``x`` by how much
denser the synthetic data is around ``x`` than the population:
``log p_synthetic(x) - log p_reference(x)``. A generator that overfits puts extra mass
on its training rows, so members score higher than non-members.

Densities are k-nearest-neighbour estimates under the distance of :mod:`.encoding`;
for ranking, ``log p(x)`` is ``-D log d_k(x)`` up to constants, so the score is
``log d_k(x, reference) - log d_k(x, synthetic)`` (the dimension ``D > 0`` does not
change the order). The attack is scored by the AUC of members (training rows) against
non-members (holdout rows, disjoint from the reference), with a percentile bootstrap
confidence interval. AUC 0.5: no membership signal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from synthrelease.validators.encoding import MixedMatrix
from synthrelease.validators.neighbours import nearest

DEFAULT_K = 1
DEFAULT_BOOTSTRAP = 200
DEFAULT_CONFIDENCE = 0.95
_FLOOR = 1e-6  # distances of exact matches (0) become this before the log
# Its figures are declared (and gated) by validators/checks/membership.py.


def membership_attack(
    *,
    members: MixedMatrix,
    non_members: MixedMatrix,
    reference: MixedMatrix,
    synthetic: MixedMatrix,
    rng: np.random.Generator,
    k: int = DEFAULT_K,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[dict[str, float], dict[str, Any]]:
    """AUC of the attack with its bootstrap interval, and details for the report."""
    if members.rows < 2 or non_members.rows < 2:
        raise ValueError("members and non-members need at least two rows each")
    if bootstrap < 10:
        raise ValueError("bootstrap must be at least 10")
    k_syn, k_ref = min(k, synthetic.rows), min(k, reference.rows)
    scores_in = _scores(members, synthetic, reference, k_syn, k_ref)
    scores_out = _scores(non_members, synthetic, reference, k_syn, k_ref)
    auc = roc_auc(scores_in, scores_out)
    draws = np.empty(bootstrap)
    for b in range(bootstrap):
        i = rng.integers(0, len(scores_in), size=len(scores_in))
        o = rng.integers(0, len(scores_out), size=len(scores_out))
        draws[b] = roc_auc(scores_in[i], scores_out[o])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    figures = {"mia_auc": auc, "mia_auc_low": float(low), "mia_auc_high": float(high)}
    details = {
        "attack": "DOMIAS-style kNN density ratio",
        "k": k,
        "members": members.rows,
        "non_members": non_members.rows,
        "reference_rows": reference.rows,
        "synthetic_rows": synthetic.rows,
        "bootstrap": bootstrap,
        "confidence": confidence,
    }
    return figures, details


def _scores(
    rows: MixedMatrix, synthetic: MixedMatrix, reference: MixedMatrix, k_syn: int, k_ref: int
) -> np.ndarray:
    d_syn, _ = nearest(rows, synthetic, k=k_syn)
    d_ref, _ = nearest(rows, reference, k=k_ref)
    return np.log(d_ref[:, -1] + _FLOOR) - np.log(d_syn[:, -1] + _FLOOR)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties one half."""
    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("both groups need scores")
    ranks = rankdata(np.concatenate([positive, negative]))
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
