"""Domain compression of the marginal engine, both ways.

Reads no sensitive rows: :func:`compress_map` sees noisy (DP) 1-way counts, and
:func:`decompress` maps sampled codes back with the caller's rng (post-processing).
"""

from __future__ import annotations

import numpy as np


def compress_map(y: np.ndarray, threshold: float) -> np.ndarray:
    """Map original cell -> compressed cell: kept cells first, the rest merged last."""
    keep = y >= threshold
    if keep.all():
        return np.arange(y.size, dtype=np.int64)
    mapping = np.full(y.size, int(keep.sum()), dtype=np.int64)
    mapping[keep] = np.arange(int(keep.sum()))
    return mapping


def decompress(codes: np.ndarray, mapping: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
