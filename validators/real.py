"""Validation figures computed against the real rows. A trusted reader (``reveal()``).

This is the only validator module that touches sensitive rows. It returns figures only:
no rows, no row counts, no observed values leave it, and it logs none of them. The
figures themselves are not differentially private and belong in the internal report.

Figures (all in [0, 1] except the excess, in [-1, 1]):

- ``tvd_1way``, ``tvd_2way``: mean TVD of the 1-/2-way marginals, synthetic vs holdout,
  on the public discretised domain.
- ``exact_copy_share``: share of synthetic rows identical to some training row.
- ``exact_copy_holdout_share``: share identical to some holdout row.
- ``exact_copy_excess``: share against a random training subsample the size of the
  holdout reference (averaged over ``train_draws`` subsamples, which roughly halves its
  noise), minus ``exact_copy_holdout_share``. Equal-size references make the natural
  collision rate of low-cardinality tables cancel; a generator that memorises training
  rows shows up as a positive excess. When the training part is larger than the holdout
  reference, only copies of the subsampled rows count, so the excess of a pure copier is
  about (holdout size / training size), not 1.

Rows are compared on the declared columns after normalising them per declared type
(numbers as float64, categories as declared labels with unknown values in the ``other``
bucket, booleans as 0/1, datetimes as naive UTC nanoseconds, one token for null), then
hashed. Work is bounded: each table is subsampled with the passed generator to at most
``max_rows`` rows (the training reference for ``exact_copy_share``: ``max_reference_rows``).
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import pandas as pd

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.validators.utility import marginal_tvd

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 50_000
DEFAULT_MAX_REFERENCE_ROWS = 1_000_000
DEFAULT_TRAIN_DRAWS = 5
FIGURE_NAMES = (
    "tvd_1way",
    "tvd_2way",
    "exact_copy_share",
    "exact_copy_holdout_share",
    "exact_copy_excess",
)
_TRUE = {"true", "1", "yes", "t", "y", "1.0"}
_FALSE = {"false", "0", "no", "f", "n", "0.0"}
_NULL_LABEL = "\x00null"


def real_data_figures(
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    synthetic: pd.DataFrame,
    discretiser: Discretiser,
    rng: np.random.Generator,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_reference_rows: int = DEFAULT_MAX_REFERENCE_ROWS,
    train_draws: int = DEFAULT_TRAIN_DRAWS,
) -> dict[str, float]:
    """The utility and copy figures of ``synthetic`` against the real train/holdout parts.

    ``discretiser`` is the ``generators.domain.Discretiser`` of the declared schema; its
    coders' specs define the compared columns. If the synthetic table falls outside the
    declared domain, the TVD figures are NaN (the gate then fails) and a warning names
    the error type; anything else wrong raises.
    """
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError("synthetic must be a pandas DataFrame")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    if min(max_rows, max_reference_rows, train_draws) < 1:
        raise ValueError("max_rows, max_reference_rows and train_draws must be positive")
    specs: Mapping[str, object] = {n: c.spec for n, c in discretiser.coders.items()}

    train_rows = _declared(train.reveal(), specs, what="train")
    holdout_rows = _subsample(_declared(holdout.reveal(), specs, what="holdout"), max_rows, rng)
    synth_rows = _subsample(_declared(synthetic, specs, what="synthetic"), max_rows, rng)
    if min(len(train_rows), len(holdout_rows), len(synth_rows)) == 0:
        raise ValueError("train, holdout and synthetic must all have rows")

    figures = _tvd_figures(holdout_rows, synth_rows, discretiser)

    synth_hash = _row_hashes(synth_rows, specs)
    reference = _subsample(train_rows, max_reference_rows, rng)
    figures["exact_copy_share"] = _share_in(synth_hash, _row_hashes(reference, specs))
    size = min(len(train_rows), len(holdout_rows))
    holdout_same = _subsample(holdout_rows, size, rng)
    holdout_share = _share_in(synth_hash, _row_hashes(holdout_same, specs))
    draws = 1 if len(train_rows) <= size else train_draws
    train_share = np.mean(
        [
            _share_in(synth_hash, _row_hashes(_subsample(train_rows, size, rng), specs))
            for _ in range(draws)
        ]
    )
    figures["exact_copy_holdout_share"] = holdout_share
    figures["exact_copy_excess"] = float(train_share) - holdout_share
    logger.info("real-data figures computed: %s", ", ".join(FIGURE_NAMES))
    return {name: float(figures[name]) for name in FIGURE_NAMES}


def _declared(frame: pd.DataFrame, specs: Mapping[str, object], *, what: str) -> pd.DataFrame:
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


def _share_in(rows: np.ndarray, reference: np.ndarray) -> float:
    return float(np.isin(rows, reference).mean())


def _row_hashes(frame: pd.DataFrame, specs: Mapping[str, object]) -> np.ndarray:
    """One uint64 per row over the normalised declared columns."""
    normal = pd.DataFrame(
        {name: _normalised(frame[name], spec) for name, spec in specs.items()},
        index=pd.RangeIndex(len(frame)),
    )
    return pd.util.hash_pandas_object(normal, index=False).to_numpy()


def _normalised(values: pd.Series, spec: object) -> np.ndarray:
    null = values.isna().to_numpy()
    if isinstance(spec, CategoricalColumn):
        text = values.astype(object).where(~null, None).map(
            lambda v: _NULL_LABEL if v is None else str(v)
        )
        if spec.other is not None:
            known = text.isin(spec.categories) | (text == _NULL_LABEL)
            text = text.where(known, spec.other)
        return text.to_numpy(dtype=object)
    if isinstance(spec, BooleanColumn):
        out = np.full(len(values), -2, dtype=np.int64)  # -2: not a boolean
        text = values.astype(object).map(lambda v: str(v).strip().lower())
        out[text.isin(_TRUE).to_numpy()] = 1
        out[text.isin(_FALSE).to_numpy()] = 0
        out[null] = -1
        return out
    if isinstance(spec, DatetimeColumn):
        stamps = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        ns = stamps.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64)
        return np.where(stamps.isna().to_numpy(), np.iinfo(np.int64).min, ns)
    if isinstance(spec, NumericalColumn):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return x + 0.0  # -0.0 -> 0.0; NaN (null or non-number) hashes alike
    raise TypeError(f"unsupported column type {type(spec).__name__}")
