"""``spec draft --dp``: a column's domain estimated under DP, and the budget plan.

Pure functions on the table ``synthrelease/private/draft.py`` reads (after it has
charged the ledger): each column is one rho-zCDP measurement with the mechanisms of
``generators/dp_domain.py`` (plus a partition-selection delta for categories); bounds
are post-processed outward (see the module docstring of ``draft.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from synthrelease import values as read
from synthrelease.errors import GeneratorError, SpecError
from synthrelease.generators import dp_domain
from synthrelease.generators.accounting import cdp_rho
from synthrelease.generators.noise import TEST_NOISE_ENV, NoiseSource
from synthrelease.private.draft_columns import (
    column_kind,
    empty_categorical,
    numerical_column,
    other_label,
    round_sig,
)
from synthrelease.private.table import SensitiveTable

DATE_ORIGIN = pd.Timestamp("1970-01-01")


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


def dp_column(
    frame: pd.DataFrame, name: str, *, rho: float, delta: float, noise: NoiseSource, label: str
) -> dict[str, Any]:
    """A column whose domain is a DP estimate (``provenance: dp``); the type comes from
    the dtype. Each call is one rho-zCDP measurement (plus ``delta`` for categories)."""

    values = frame[name]
    kind = column_kind(values)
    if kind == "empty":
        return empty_categorical("dp")
    if kind == "boolean":  # the domain {true, false} is fixed: nothing to measure
        return {"type": "boolean", "nullable": True, "provenance": "dp"}
    if kind == "numerical":
        integer = bool(pd.api.types.is_integer_dtype(values.dtype))
        x = read.numerical(values).values
        x = x.where(np.isfinite(x), np.nan)  # infinities clip to the bounds later
        part = SensitiveTable(pd.DataFrame({name: x}), label=label)
        lower, upper = _dp_numeric(part, name, integer=integer, rho=rho, noise=noise)
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
    kept = sorted(dp_domain.dp_categories(part, name, rho=rho, delta=delta, noise=noise))
    return {
        "type": "categorical",
        "nullable": True,
        "categories": kept,
        "other": other_label(kept),
        "provenance": "dp",
    }


def plan_dp_draft(*, epsilon: float, delta: float, columns: int) -> tuple[float, float]:
    """(rho per column, partition-selection delta per column) for ``columns`` columns:
    half of ``delta`` converts the zCDP total to (epsilon, delta/2), the other half pays
    the category thresholds. Depends on the header only (the column count)."""

    if columns < 1:
        raise SpecError("the table has no columns")
    rho = cdp_rho(epsilon=epsilon, delta=delta / 2)
    if not rho > 0:
        raise SpecError("--dp / --dp-delta leave no budget for the DP draft")
    return rho / columns, (delta / 2) / columns


def draft_noise(seed: int | None) -> NoiseSource:

    if seed is None:
        return NoiseSource.secure()
    if os.environ.get(TEST_NOISE_ENV) != "1":
        raise SpecError(
            f"--seed makes the DP draft NOT PRIVATE: it is for tests only and "
            f"needs the environment variable {TEST_NOISE_ENV}=1"
        )
    return NoiseSource.seeded(seed)
