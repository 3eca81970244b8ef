"""DP quantile bin edges for numeric columns, charged to the budget.

Declared bounds make uniform bins free (public); declared ``edges`` make any bins free;
this step learns data-adaptive edges *with* DP instead: each listed column's values are
counted on a fine uniform grid inside its declared bounds (``GRID`` cells), the
histogram gets Gaussian noise (one histogram per column, each of L2 sensitivity 1 under
adding or removing a row, so c columns cost ``c / (2 sigma^2)`` in zCDP: one budget
line), and the edges are read off the noisy CDF at ``k / bins`` (post-processing).
Equal edges collapse, so a column with a large point mass gets fewer bins. Every edge
is a boundary of the fine grid (:func:`grid_boundaries`, a function of the declared
bounds only): the public grid the release stores, never a noisy float.

Reads no rows itself: :func:`grid_columns` says how to encode the fine grid and the
generator's trusted encoder (``marginal.data.encode_rows``) produces the codes whose
exact histograms reach :func:`noisy_edges` only to be noised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine
from synthrelease.generators.domain import ColumnCoder, declared_bounds
from synthrelease.generators.noise import NoiseSource
from synthrelease.spec import Column, NumericalColumn

GRID = 1024
_MARGIN = 1e-12


def numerical(columns: Mapping[str, Column], name: str) -> NumericalColumn:
    """Column ``name``, which must be a numerical column of ``columns``."""
    spec = columns.get(name)
    if not isinstance(spec, NumericalColumn):
        raise GeneratorError(
            f"quantile_edges: column {name!r} is not a numerical column of the schema"
        )
    return spec


def check_columns(columns: Mapping[str, Column], names: Sequence[str]) -> None:
    """Every listed column must be a declared numerical column."""
    for name in names:
        spec = numerical(columns, name)
        if spec.edges is not None:
            raise GeneratorError(f"quantile_edges: column {name!r} already declares its edges")


def grid_columns(columns: Mapping[str, Column], names: Sequence[str]) -> dict[str, NumericalColumn]:
    """The listed columns re-declared on the fine uniform grid (public: bounds only)."""
    return {
        n: numerical(columns, n).model_copy(update={"bins": GRID, "edges": None}) for n in names
    }


def grid_boundaries(name: str, spec: NumericalColumn) -> np.ndarray:
    """Upper boundary of each fine-grid cell of ``spec`` (as encoded by ColumnCoder)."""
    coder = ColumnCoder(name, spec, _grid_bins(spec))
    lo, hi = declared_bounds(spec)
    if coder.integer_steps():
        return lo + np.arange(1, coder.bins + 1, dtype=float)
    return lo + (hi - lo) * np.arange(1, coder.bins + 1, dtype=float) / coder.bins


def _grid_bins(spec: NumericalColumn) -> int:
    lower, upper = declared_bounds(spec)
    if spec.integer and lower.is_integer():
        span = int(math.floor(upper) - lower + 1)
        if span <= GRID:
            return span
    return GRID


def sigma_for(rho: float, count: int) -> float:
    """Noise scale for ``count`` histograms costing ``rho`` together."""
    if rho <= 0:
        raise GeneratorError("quantile_share leaves no budget for the quantile edges")
    return math.sqrt(count / (2.0 * rho)) * (1 + _MARGIN)


def noisy_edges(
    counts: np.ndarray,
    boundaries: np.ndarray,
    spec: NumericalColumn,
    *,
    bins: int,
    sigma: float,
    noise: NoiseSource,
) -> tuple[float, ...]:
    """Interior edges at the noisy ``k / bins`` quantiles (SENSITIVE input ``counts`` is
    used only through the Gaussian noise added here)."""
    noisy = np.maximum(counts + noise.normal(sigma, counts.size), 0.0)
    mass = float(noisy.sum())
    lo, hi = declared_bounds(spec)
    if mass <= 0:
        return tuple(lo + (hi - lo) * k / bins for k in range(1, bins))
    cdf = np.cumsum(noisy) / mass
    idx = np.searchsorted(cdf, np.arange(1, bins) / bins, side="left")
    picked = boundaries[np.clip(idx, 0, boundaries.size - 1)]
    return tuple(float(e) for e in np.unique(picked) if lo < e < hi)


def quantile_line(count: int, sigma: float) -> BudgetLine:
    return BudgetLine(
        f"DP quantile edges ({count} column{'s' if count != 1 else ''})",
        count / (2 * sigma**2),
        "Gaussian (noisy histogram)",
    )
