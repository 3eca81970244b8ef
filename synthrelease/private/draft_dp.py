"""``spec draft --dp``: a column's domain estimated under DP, and the budget plan.

Pure functions on the table ``synthrelease/private/draft.py`` reads (after it has
charged the ledger): each column spends at most its equal share rho of the plan
(:func:`plan_dp_draft`) with the mechanisms of ``generators/dp_domain.py`` (plus a
partition-selection delta for categories); bounds are post-processed outward (see the
module docstring of ``draft.py``).

Types beyond the dtype are decided from DP outputs only (post-processing):

- text column: the DP category set (:func:`dp_domain.dp_categories`) holds exactly one
  true and one false spelling -> boolean; otherwise categorical with that set;
- numeric column: half of rho buys the DP bounds; where they hold at most
  :data:`MAX_INTEGER_CELLS` whole numbers, the other half buys a Gaussian histogram over
  those integers plus one cell for every other row (a fraction, a value outside the DP
  bounds, or text the release would read as another label). Where that extra cell is not
  populated (its noisy count is under the threshold noise alone crosses with probability
  1e-3) and the populated integer cells are few (:func:`small_integers`), the column is
  categorical with those integers (or boolean when they are exactly 0 and 1); otherwise
  numerical with the DP bounds (the second half unspent).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from synthrelease import values as read
from synthrelease.errors import GeneratorError, SpecError
from synthrelease.generators import dp_domain
from synthrelease.generators.accounting import cdp_rho
from synthrelease.generators.noise import TEST_NOISE_ENV, NoiseSource
from synthrelease.private.draft_columns import (
    boolean_column,
    categorical_column,
    column_kind,
    empty_categorical,
    no_target_classes,
    numerical_column,
    round_sig,
    small_integers,
    two_valued_boolean,
)
from synthrelease.private.table import SensitiveTable

DATE_ORIGIN = pd.Timestamp("1970-01-01")
# The integer histogram of a numeric column is measured only where its DP bounds hold at
# most this many whole numbers (a constant year fits: its bounds are one grid cell of
# about 19%); wider columns are numerical without it.
MAX_INTEGER_CELLS = 512


def _dp_numeric(
    table: SensitiveTable, name: str, *, integer: bool, rho: float, noise: NoiseSource
) -> tuple[float, float]:

    try:
        lo, hi = dp_domain.dp_bounds(table, name, rho=rho, noise=noise, integer=integer)
    except GeneratorError:
        raise SpecError(
            f"column {name!r}: the DP histogram found no populated range at this --dp "
            "epsilon; raise --dp, or declare the column's bounds by hand"
        ) from None
    lower, upper = round_sig(lo, up=False), round_sig(hi, up=True)  # post-processing
    if integer:
        lower, upper = float(math.floor(lower)), float(math.ceil(upper))
    if lower >= upper:
        upper = lower + 1.0
    return lower, upper


def _dp_integers(
    values: pd.Series,
    text: pd.Series | None,
    *,
    lower: float,
    upper: float,
    rho: float,
    noise: NoiseSource,
) -> list[str] | None:
    """The whole numbers of a numeric column that a rho-zCDP histogram finds populated, if
    they are few and hardly any row lies elsewhere (see the module docstring); else None.

    The cells are every integer in the DP bounds ``[lower, upper]`` (public: a DP output)
    plus one cell for every other present row; each row lands in one cell (L2
    sensitivity 1), so this is a Gaussian mechanism with sigma sqrt(1 / (2 rho)). Rows
    whose ``text`` (the column as the release reads a category) is not the canonical
    label of their number count in the other cell. Nothing returned depends on the rows
    except through the noisy counts. Not called (nothing spent) for wide bounds.
    """
    first, last = math.ceil(lower), math.floor(upper)
    cells = last - first + 1
    if cells < 1 or cells > MAX_INTEGER_CELLS:
        return None
    present = values.dropna()
    x = read.numerical(present).values.to_numpy(dtype=float)
    ok = np.isfinite(x) & (np.mod(np.where(np.isfinite(x), x, 0.0), 1) == 0)
    ok &= (x >= first) & (x <= last)
    if text is not None:
        labels = read.categorical(present).values
        ok &= (text.reindex(present.index).astype(object) == labels).to_numpy(dtype=bool)
    where = np.where(ok, np.where(ok, x, first) - first, cells).astype(np.int64)
    counts = np.bincount(where, minlength=cells + 1).astype(float)
    del present, x, ok, where  # nothing below reads rows
    sigma = math.sqrt(1.0 / (2.0 * rho))
    noisy = counts + noise.normal(sigma, counts.size)
    del counts
    z = NormalDist().inv_cdf(1.0 - dp_domain.FALSE_CELL_PROBABILITY / noisy.size)
    if noisy[-1] > z * sigma:  # many rows are not such integers: numerical
        return None
    hit = [str(first + int(i)) for i in np.flatnonzero(noisy[:-1] > z * sigma)]
    return hit if small_integers(hit) else None


def dp_column(
    frame: pd.DataFrame,
    name: str,
    *,
    rho: float,
    delta: float,
    noise: NoiseSource,
    label: str,
    target: bool = False,
    text: pd.Series | None = None,
) -> dict[str, Any]:
    """A column whose domain is a DP estimate (``provenance: dp``); the type comes from
    the dtype and DP outputs (see the module docstring). Each call spends at most ``rho``
    (zCDP) plus ``delta`` for categories. ``target``: no ``other`` bucket (rows outside
    the DP category set are dropped at release). ``text``: a numeric column as the release
    reads a category (None: the values' own labels)."""

    values = frame[name]
    kind = column_kind(values)
    numeric_dtype = pd.api.types.is_numeric_dtype(values.dtype) and not (
        pd.api.types.is_bool_dtype(values.dtype)
    )
    if kind == "empty" and numeric_dtype:
        # A numeric column with no value: whether it has one is a row fact, so it takes
        # the DP path like any numeric column, and an empty DP histogram (a DP outcome)
        # makes it an empty categorical (red-team finding F1).
        kind = "numerical"
    if kind == "empty":
        if target:
            raise no_target_classes(name)
        return empty_categorical("dp")
    if kind == "boolean":  # the domain {true, false} is fixed: nothing to measure
        return boolean_column("dp")
    if kind == "numerical":
        integer = bool(pd.api.types.is_integer_dtype(values.dtype))
        x = read.numerical(values).values
        x = x.where(np.isfinite(x), np.nan)  # infinities clip to the bounds later
        part = SensitiveTable(pd.DataFrame({name: x}), label=label)
        try:
            lower, upper = _dp_numeric(part, name, integer=integer, rho=rho / 2, noise=noise)
        except SpecError:  # the DP histogram found nothing: decided by the noise
            if target:
                raise no_target_classes(name) from None
            return empty_categorical("dp")
        ints = _dp_integers(values, text, lower=lower, upper=upper, rho=rho / 2, noise=noise)
        if ints is not None and set(ints) == {"0", "1"}:
            return boolean_column("dp")
        if ints is not None:
            return categorical_column(ints, bucket=not target, numeric=True, provenance="dp")
        return numerical_column(lower, upper, integer=integer, provenance="dp")
    if kind == "datetime":
        dates = read.datetime(values).values  # naive UTC; NaT for null
        days = (dates - DATE_ORIGIN) / pd.Timedelta(days=1)
        part = SensitiveTable(pd.DataFrame({name: days.astype(float)}), label=label)
        lo, hi = _dp_numeric(part, name, integer=False, rho=rho, noise=noise)
        lo_t = DATE_ORIGIN + pd.Timedelta(days=math.floor(lo))
        hi_t = DATE_ORIGIN + pd.Timedelta(days=math.ceil(hi))
        first = dt.datetime(lo_t.year, 1, 1)
        last = (
            dt.datetime(hi_t.year + 1, 1, 1)
            if hi_t > pd.Timestamp(hi_t.year, 1, 1)
            else dt.datetime(hi_t.year, 1, 1)
        )
        if last <= first:
            last = dt.datetime(first.year + 1, 1, 1)
        return {
            "type": "datetime",
            "nullable": True,
            "lower": first.isoformat(),
            "upper": last.isoformat(),
            "provenance": "dp",
        }
    part = SensitiveTable(pd.DataFrame({name: values}), label=label)
    kept = dp_domain.dp_categories(part, name, rho=rho, delta=delta, noise=noise)
    if two_valued_boolean(kept):
        return boolean_column("dp")
    if target and not kept:
        raise no_target_classes(name)
    return categorical_column(kept, bucket=not target, numeric=False, provenance="dp")


@dataclass(frozen=True)
class DraftPlan:
    """The DP draft's budget split, from the header alone (see :func:`plan_dp_draft`)."""

    rho_column: float  # zCDP per column
    delta_column: float  # partition-selection delta per column
    rho_count: float  # zCDP of the row count (0.0: none is measured)


def plan_dp_draft(*, epsilon: float, delta: float, columns: int, count: bool) -> DraftPlan:
    """The split of (epsilon, delta) over ``columns`` columns and, with ``count``, the row
    count: half of ``delta`` converts the zCDP total rho to (epsilon, delta/2), the other
    half pays the category thresholds (split equally over the columns); rho is split in
    ``columns`` (+1 with ``count``) equal shares. Depends on the header (the column count)
    and the command line (whether a row count was declared) only."""

    if columns < 1:
        raise SpecError("the table has no columns")
    rho = cdp_rho(epsilon=epsilon, delta=delta / 2)
    if not rho > 0:
        raise SpecError("--dp / --dp-delta leave no budget for the DP draft")
    shares = columns + (1 if count else 0)
    return DraftPlan(
        rho_column=rho / shares,
        delta_column=(delta / 2) / columns,
        rho_count=rho / shares if count else 0.0,
    )


def draft_noise(seed: int | None) -> NoiseSource:
    """The noise of a DP measurement the command line makes outside a run (``spec draft
    --dp``, ``plan --measure``): secure, or seeded for tests only."""
    if seed is None:
        return NoiseSource.secure()
    if os.environ.get(TEST_NOISE_ENV) != "1":
        raise SpecError(
            f"--seed makes the DP measurement NOT PRIVATE: it is for tests only and "
            f"needs the environment variable {TEST_NOISE_ENV}=1"
        )
    return NoiseSource.seeded(seed)
