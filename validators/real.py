"""Validation figures computed against the real rows. A trusted reader (``reveal()``).

This is the only validator module that touches sensitive rows. It returns figures only:
no rows, no row counts, no observed values leave it, and it logs none of them. The
figures themselves are not differentially private and belong in the internal report.
:func:`real_data_figures` gives the first slice's figures (below);
:func:`evaluate_against_real` runs every check of the registry (``validators/checks/``,
one declaration per check) on the seeded :class:`Samples` it draws; the checks and the
metric modules behind them are pure functions of those samples (the fail-closed plumbing
is ``validators/evaluation.py``).

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
(``validators/copies.py``), then hashed. Work is bounded: each table is subsampled with
the passed generator to at most ``max_rows`` rows (the training reference for
``exact_copy_share``: ``max_reference_rows``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import NumericalColumn
from synthrelease.validators.checks import REGISTRY
from synthrelease.validators.checks.marginals import CHECK as MARGINALS
from synthrelease.validators.evaluation import CHECKS, Collector, Evaluation
from synthrelease.validators.marginals import (
    DEFAULT_MAX_REFERENCE_ROWS,
    DEFAULT_MAX_ROWS,
    DEFAULT_TRAIN_DRAWS,
    declared,
    marginal_copy_figures,
)
from synthrelease.validators.samples import Samples, Settings, shuffled

logger = logging.getLogger(__name__)
DEFAULT_SETTINGS = Settings()  # frozen: one shared default
private_logger = logging.getLogger("synthrelease.private.real")  # failed real-data checks

FIGURE_NAMES = MARGINALS.figures  # declared in validators/checks/marginals.py


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
    figures = marginal_copy_figures(
        train=train.reveal(),
        holdout=holdout.reveal(),
        synthetic=synthetic,
        discretiser=discretiser,
        rng=rng,
        max_rows=max_rows,
        max_reference_rows=max_reference_rows,
        train_draws=train_draws,
    )
    logger.info("real-data figures computed: %s", ", ".join(FIGURE_NAMES))
    return {name: figures[name] for name in FIGURE_NAMES}


def evaluate_against_real(
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    synthetic: pd.DataFrame,
    discretiser: Discretiser,
    target: str | None,
    rng: np.random.Generator,
    settings: Settings = DEFAULT_SETTINGS,
    only: Collection[str] | None = None,
    train_rows: int | None = None,
) -> Evaluation:
    """Every utility and privacy figure of ``synthetic`` against the real parts (or the
    checks named in ``only``, a subset of :data:`CHECKS`).

    The checks are those of the registry (``validators/checks/``), run in its order.
    Seeded subsamples bound the work (``settings``): with fixed sizes the time is linear
    in the rows (sampling) plus a constant. Each check draws from its own child of
    ``rng`` (spawned in :data:`CHECKS` order), so a check's figures are the same whether
    it runs with the others or alone. Each check fails closed on its own (NaN figures,
    error type recorded); a wrong argument raises. ``train_rows``: the training part's
    row count when ``train`` is a sample of it (the pipeline's bounded samples).
    """
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError("synthetic must be a pandas DataFrame")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    wanted = set(CHECKS if only is None else only)
    if not wanted or wanted - set(CHECKS):
        raise ValueError(f"only: names checks among {', '.join(CHECKS)}")
    specs: Mapping[str, object] = {n: c.spec for n, c in discretiser.coders.items()}
    if target is not None and target not in specs:
        raise ValueError("the target is not a declared column")
    s, m = settings.sample_rows, settings.marginal_rows
    train_all = _clip_numbers(declared(train.reveal(), specs, what="train"), specs)
    hold_all = _clip_numbers(declared(holdout.reveal(), specs, what="holdout"), specs)
    hold_m = shuffled(hold_all, m, rng)
    synth_m = shuffled(declared(synthetic, specs, what="synthetic"), m, rng)
    hold, synth = hold_m.iloc[:s], synth_m.iloc[:s]  # random rows: a prefix is a sample
    if min(len(train_all), len(hold), len(synth)) < 4:
        raise ValueError("train, holdout and synthetic need at least four rows each")
    samples = Samples(
        train_all=train_all,
        hold_all=hold_all,
        hold_m=hold_m,
        synth_m=synth_m,
        hold=hold,
        synth=synth,
        train_ref=shuffled(train_all, len(hold), rng),  # equal references
        synthetic=synthetic,
        discretiser=discretiser,
        specs=specs,
        target=target,
        settings=settings,
        train_rows=max(int(train_rows or 0), len(train_all)),
    )
    child = dict(zip(CHECKS, rng.spawn(len(CHECKS))))
    out = Collector()
    out.evaluation.details["settings"] = settings.to_dict()
    for check in REGISTRY:
        if check.name in wanted and (target is not None or not check.needs_target):
            out.run(
                check.name,
                functools.partial(check.compute, samples, child[check.name]),
                check.figures,
            )
    failed = sorted(out.evaluation.errors)
    private_logger.info(
        "real-data evaluation: %d checks failed%s",
        len(failed),
        f" ({', '.join(failed)})" if failed else "",
    )
    return out.evaluation


def _clip_numbers(frame: pd.DataFrame, specs: Mapping[str, object]) -> pd.DataFrame:
    """Real numbers outside the validation domain clipped to it, as the generator saw
    them (``train`` already clips to declared bounds; a DP-estimated bound can be
    narrower than the rows). Copies only the columns it changes."""
    out = frame
    for name, spec in specs.items():
        if not isinstance(spec, NumericalColumn) or spec.lower is None or spec.upper is None:
            continue
        x = pd.to_numeric(frame[name], errors="coerce")
        if ((x < spec.lower) | (x > spec.upper)).any():
            out = out.copy() if out is frame else out
            out[name] = x.clip(spec.lower, spec.upper)
    return out
