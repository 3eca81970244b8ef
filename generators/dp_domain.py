"""DP measurements of what a spec leaves undeclared: the row count, numeric bounds and
category sets. Trusted reader (``table.reveal()``): each function here is a Gaussian
mechanism whose zCDP cost the caller plans and reports as a budget line.

- :func:`dp_row_count`: the number of rows plus N(0, sigma^2), sensitivity 1, rounded
  to an integer (:func:`public_count`) before it leaves: no low-order floating-point bits
  of the noisy value are ever stored or published (Mironov, CCS 2012).
- :func:`dp_bounds`: a histogram over a *fixed, public* grid (sign, then quarter-octaves
  from 2^-8 to 2^50, plus zero and overflow cells), each row in one cell (L2 sensitivity
  1), Gaussian noise on every cell; the bounds are the outer edges of the outermost cells
  whose noisy count clears a threshold set so that noise alone crosses it with
  probability < 1e-3. Values outside them are later clipped to them. The grid does not
  depend on the data, so this is a plain Gaussian mechanism, and the bounds are always
  grid points (:func:`on_bounds_grid`; integer columns: their floor/ceil), never a noisy
  float.
- :func:`dp_categories`: counts of the values present in the column plus Gaussian
  noise, keeping only values whose noisy count exceeds ``1 + sigma * z(delta)``. The set of
  present values depends on the data, so on top of its zCDP cost this spends ``delta``:
  the chance that a value held by a single row survives (Gaussian partition selection).
  Rare values are therefore suppressed; the rows holding them go to an ``other`` bucket.

Errors name the column, never a value. Noise comes only from the passed NoiseSource.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import GeneratorError, SchemaMismatchError
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import CategoricalColumn, NumericalColumn

logger = logging.getLogger(__name__)

GRID_MIN_EXP, GRID_MAX_EXP, GRID_STEPS_PER_OCTAVE = -8, 50, 4
FALSE_CELL_PROBABILITY = 1e-3
OTHER_LABEL = "other"


def undeclared(column: object) -> bool:
    """True for a column whose domain the spec leaves to a DP estimate."""
    return not getattr(column, "declared", True)


def _sigma(rho: float) -> float:
    if not (rho > 0 and math.isfinite(rho)):
        raise GeneratorError("dp_domain: rho must be a positive, finite number")
    return math.sqrt(1.0 / (2.0 * rho))


def _column(table: SensitiveTable, name: str) -> pd.Series:
    if name not in table.columns:
        raise SchemaMismatchError(f"the table lacks declared column {name!r}")
    return table.reveal()[name]


# --------------------------------------------------------------------------- row count
def public_count(value: float) -> float:
    """A DP count on the public grid: the nearest integer, at least 1 (post-processing)."""
    value = float(value)
    if not math.isfinite(value):
        raise GeneratorError("dp_domain: a DP count must be a finite number")
    return max(1.0, float(round(value)))


def dp_row_count(table: SensitiveTable, *, rho: float, noise: NoiseSource) -> float:
    """Gaussian mechanism on the row count (sensitivity 1), rounded to an integer >= 1."""
    return dp_count(table.reveal().shape[0], rho=rho, noise=noise)


def dp_count(exact: int, *, rho: float, noise: NoiseSource) -> float:
    """:func:`dp_row_count`'s mechanism on a count made elsewhere (e.g. a code store's)."""
    return public_count(exact + noise.normal(_sigma(rho), 1)[0])


# --------------------------------------------------------------------------- bounds
def grid_edges() -> np.ndarray:
    """The public grid: -inf, -2^50, ..., -2^-8, 0, 2^-8, ..., 2^50, +inf."""
    exps = (
        np.arange(GRID_MIN_EXP * GRID_STEPS_PER_OCTAVE, GRID_MAX_EXP * GRID_STEPS_PER_OCTAVE + 1)
        / GRID_STEPS_PER_OCTAVE
    )
    pos = np.exp2(exps)
    return np.concatenate([[-np.inf], -pos[::-1], [0.0], pos, [np.inf]])


def on_bounds_grid(value: float, *, integer: bool = False) -> bool:
    """True if ``value`` is a point of the public bounds grid (or, for an integer column,
    the floor/ceil of one): what :func:`dp_bounds` may return."""
    edges = grid_edges()[1:-1]
    points = np.concatenate([edges, np.floor(edges), np.ceil(edges)]) if integer else edges
    return bool(np.isin(float(value), points))


def _numeric_values(values: pd.Series, name: str) -> np.ndarray:
    present = values.dropna()
    x = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
    if np.isnan(x).any():
        raise SchemaMismatchError(f"column {name!r}: has values that are not numbers")
    return x


def dp_bounds(
    table: SensitiveTable,
    name: str,
    *,
    rho: float,
    noise: NoiseSource,
    integer: bool = False,
) -> tuple[float, float]:
    """DP (lower, upper) of a numeric column from a noisy histogram on the public grid."""
    x = _numeric_values(_column(table, name), name)
    edges = grid_edges()
    cells = np.searchsorted(edges, x, side="right") - 1  # cell k holds [edges[k], edges[k+1])
    counts = np.bincount(cells, minlength=len(edges) - 1).astype(float)
    sigma = _sigma(rho)
    noisy = counts + noise.normal(sigma, counts.size)
    del x, cells, counts  # nothing below reads rows
    z = NormalDist().inv_cdf(1.0 - FALSE_CELL_PROBABILITY / noisy.size)
    hit = np.flatnonzero(noisy > z * sigma)
    if hit.size == 0:
        raise GeneratorError(
            f"column {name!r}: too few rows to estimate its bounds with this budget; "
            "declare lower/upper or raise privacy.domain_share"
        )
    finite = edges[1:-1]
    lower = float(edges[hit[0]]) if np.isfinite(edges[hit[0]]) else float(finite[0])
    upper = float(edges[hit[-1] + 1]) if np.isfinite(edges[hit[-1] + 1]) else float(finite[-1])
    if integer:
        lower, upper = float(math.floor(lower)), float(math.ceil(upper))
    if lower >= upper:  # cannot happen on this grid; keep the spec invariant anyway
        upper = lower + 1.0
    return lower, upper


# --------------------------------------------------------------------------- categories
def category_threshold(*, sigma: float, delta: float) -> float:
    """Noisy count a value must exceed: a single row's value passes with prob. delta."""
    return 1.0 + sigma * NormalDist().inv_cdf(1.0 - delta)


def dp_categories(
    table: SensitiveTable,
    name: str,
    *,
    rho: float,
    delta: float,
    noise: NoiseSource,
) -> tuple[str, ...]:
    """The values of a categorical column whose noisy count clears the threshold."""
    if not 0 < delta < 1:
        raise GeneratorError("dp_domain: delta must be in (0, 1)")
    values = _column(table, name).dropna().astype(str)
    counts = values.value_counts(sort=False).sort_index()
    sigma = _sigma(rho)
    noisy = counts.to_numpy(dtype=float) + noise.normal(sigma, len(counts))
    keep = noisy > category_threshold(sigma=sigma, delta=delta)
    labels = tuple(str(v) for v in counts.index[keep])
    del values, counts  # nothing below reads rows
    return labels


# --------------------------------------------------------------------------- columns
def _other_label(spec: CategoricalColumn, labels: tuple[str, ...]) -> str:
    if spec.other is not None:
        return spec.other
    other = OTHER_LABEL
    while other in labels:
        other += "_"
    return other


def resolve_columns(
    table: SensitiveTable,
    columns: Mapping[str, Any],
    *,
    rho_each: float,
    delta_each: float,
    noise: NoiseSource,
) -> tuple[dict[str, Any], list[tuple[str, float, float]]]:
    """Columns with every undeclared domain replaced by its DP estimate.

    Returns the resolved columns and one ``(step, rho, delta)`` per measurement, in the
    order they were made (declared order of the columns).
    """
    resolved: dict[str, Any] = {}
    spent: list[tuple[str, float, float]] = []
    for name, spec in columns.items():
        if not undeclared(spec):
            resolved[name] = spec
        elif isinstance(spec, NumericalColumn):
            lo, hi = dp_bounds(table, name, rho=rho_each, noise=noise, integer=spec.integer)
            lower = spec.lower if spec.lower is not None else lo
            upper = spec.upper if spec.upper is not None else hi
            if lower >= upper:
                raise GeneratorError(
                    f"column {name!r}: the DP estimate of its open bound falls beyond its "
                    "declared bound; declare both bounds"
                )
            resolved[name] = spec.model_copy(update={"lower": lower, "upper": upper})
            spent.append((f"bounds of {name}", rho_each, 0.0))
        else:
            labels = dp_categories(table, name, rho=rho_each, delta=delta_each, noise=noise)
            resolved[name] = spec.model_copy(
                update={"categories": labels, "other": _other_label(spec, labels)}
            )
            spent.append((f"categories of {name}", rho_each, delta_each))
    if spent:
        logger.info("dp_domain: estimated %d undeclared domain(s) with DP", len(spent))
    return resolved, spent


def clip_to_bounds(frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
    """Clip numeric columns into their (declared or DP) bounds; a copy, nulls kept."""
    out = frame.copy()
    for name, spec in columns.items():
        if isinstance(spec, NumericalColumn) and name in out.columns:
            values = pd.to_numeric(out[name], errors="coerce")
            bad = values.isna() & out[name].notna()
            if bad.any():
                raise SchemaMismatchError(f"column {name!r}: has values that are not numbers")
            out[name] = values.clip(lower=spec.lower, upper=spec.upper)
    return out
