"""Marginal TVDs and exact-copy shares of declared rows (pure: the caller reveals).

``validators/real.py``'s :func:`~synthrelease.validators.real.real_data_figures` and the
``marginals_and_copies`` check (``validators/checks/marginals.py``) both call
:func:`marginal_copy_figures`; the figures are defined in ``real.py``'s docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.validators.copies import row_hashes, share_in
from synthrelease.validators.utility import marginal_tvd

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 50_000
DEFAULT_MAX_REFERENCE_ROWS = 1_000_000
DEFAULT_TRAIN_DRAWS = 5


def marginal_copy_figures(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    discretiser: Discretiser,
    rng: np.random.Generator,
    max_rows: int,
    max_reference_rows: int,
    train_draws: int,
) -> dict[str, float]:
    """TVDs (synthetic vs holdout) and copy shares, on at most ``max_rows`` rows per table
    (the training reference of ``exact_copy_share``: ``max_reference_rows``)."""
    specs: Mapping[str, object] = {n: c.spec for n, c in discretiser.coders.items()}
    train_rows = declared(train, specs, what="train")
    holdout_rows = _subsample(declared(holdout, specs, what="holdout"), max_rows, rng)
    synth_rows = _subsample(declared(synthetic, specs, what="synthetic"), max_rows, rng)
    if min(len(train_rows), len(holdout_rows), len(synth_rows)) == 0:
        raise ValueError("train, holdout and synthetic must all have rows")

    figures = _tvd_figures(holdout_rows, synth_rows, discretiser)

    synth_hash = row_hashes(synth_rows, specs)
    reference = _subsample(train_rows, max_reference_rows, rng)
    figures["exact_copy_share"] = share_in(synth_hash, row_hashes(reference, specs))
    size = min(len(train_rows), len(holdout_rows))
    holdout_same = _subsample(holdout_rows, size, rng)
    holdout_share = share_in(synth_hash, row_hashes(holdout_same, specs))
    draws = 1 if len(train_rows) <= size else train_draws
    train_share = np.mean(
        [
            share_in(synth_hash, row_hashes(_subsample(train_rows, size, rng), specs))
            for _ in range(draws)
        ]
    )
    figures["exact_copy_holdout_share"] = holdout_share
    figures["exact_copy_excess"] = float(train_share) - holdout_share
    return {name: float(value) for name, value in figures.items()}


def declared(frame: pd.DataFrame, specs: Mapping[str, object], *, what: str) -> pd.DataFrame:
    """The declared columns of ``frame``; a missing one raises."""
    missing = [c for c in specs if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"{what} table lacks declared columns {missing!r}")
    return frame[list(specs)]


def _subsample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    keep = np.sort(rng.choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep]


def _tvd_figures(
    holdout: pd.DataFrame, synthetic: pd.DataFrame, discretiser: Discretiser
) -> dict[str, float]:
    holdout_codes = discretiser.encode(holdout)  # real rows are in the domain (checked at load)
    try:
        synth_codes = discretiser.encode(synthetic)
    except SchemaMismatchError as exc:
        logger.warning("synthetic table is outside the declared domain (%s)", type(exc).__name__)
        return {"tvd_1way": float("nan"), "tvd_2way": float("nan")}
    sizes = discretiser.sizes
    tvd_1way = marginal_tvd(synth_codes, holdout_codes, sizes, way=1)
    # A one-column table has no pairs: its whole joint distribution is the 1-way marginal.
    tvd_2way = tvd_1way
    if len(sizes) > 1:
        tvd_2way = marginal_tvd(synth_codes, holdout_codes, sizes, way=2)
    return {"tvd_1way": tvd_1way, "tvd_2way": tvd_2way}
