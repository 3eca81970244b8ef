"""DP 1-way shapes of a table, for ``synthrelease plan --measure`` (issue 14).

The recipe: rho, sigma, measure. Every column's 1-way marginal over the spec's
discretised domain, with Gaussian noise N(0, sigma^2) per cell. Under add/remove of one
row each of the d marginals moves by one in one cell, so the vector of all of them has
L2 sensitivity sqrt(d) and ``sigma = sqrt(d / (2 rho))`` spends exactly ``rho`` (zCDP).

**Sensitive rows**: read only by :func:`~synthrelease.generators.marginal.data.encode_rows`
(the trusted encoder), a chunk at a time; the exact counts go nowhere but into the noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.data import encode_rows
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable

_MARGIN = 1e-12  # sigma rounded up: rounding never makes the spend exceed rho
STEP = "plan: every 1-way marginal"


def shapes_sigma(*, rho: float, columns: int) -> float:
    """The noise per cell that spends ``rho`` on ``columns`` 1-way marginals."""
    return math.sqrt(columns / (2.0 * rho)) * (1.0 + _MARGIN)


def measure_shapes(
    chunks: Iterable[SensitiveTable], disc: Discretiser, *, rho: float, noise: NoiseSource
) -> tuple[dict[str, np.ndarray], float, BudgetLine]:
    """(noisy 1-way counts by column, sigma, the budget line): the Gaussian mechanism on
    the exact counts of every chunk's rows, summed; noisy counts rounded to integers
    (public values on a grid, not raw floats)."""
    sizes = list(disc.sizes.values())
    sigma = shapes_sigma(rho=rho, columns=len(sizes))
    exact = [np.zeros(size, dtype=np.int64) for size in sizes]
    for chunk in chunks:
        codes = encode_rows(chunk, disc)  # READS SENSITIVE ROWS (the trusted encoder)
        if not isinstance(codes, np.ndarray):
            raise GeneratorError("1-way shapes are counted from tables, not a code store")
        for i, size in enumerate(sizes):
            exact[i] += np.bincount(codes[i].astype(np.int64), minlength=size)[:size]
    noisy = {
        name: np.rint(counts + noise.normal(sigma, size))
        for name, counts, size in zip(disc.names, exact, sizes)
    }
    del exact
    return noisy, sigma, BudgetLine(STEP, float(rho), "gaussian")
