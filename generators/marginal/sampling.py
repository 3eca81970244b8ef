"""Stratified conditional draws, shared by the fitted marginal models' samplers.

Post-processing only: the joint tables come from a model estimated from DP measurements,
and every random draw comes from the ``numpy.random.Generator`` the caller passes.
"""

from __future__ import annotations

import numpy as np


def draw(parents: np.ndarray, joint: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
