"""Marginal TVDs and exact copies: one pass over the declared, discretised rows.

Computed by ``validators/marginals.py`` (TVDs: ``utility.py``; row hashes: ``copies.py``)
on ``marginal_rows`` rows per table, as ``validators.real.real_data_figures`` does.
"""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.marginals import (
    DEFAULT_MAX_REFERENCE_ROWS,
    DEFAULT_TRAIN_DRAWS,
    marginal_copy_figures,
)
from synthrelease.validators.samples import Samples


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    figures = marginal_copy_figures(
        train=samples.train_all,
        holdout=samples.hold_all,
        synthetic=samples.synthetic,
        discretiser=samples.discretiser,
        rng=rng,
        max_rows=samples.settings.marginal_rows,
        max_reference_rows=DEFAULT_MAX_REFERENCE_ROWS,
        train_draws=DEFAULT_TRAIN_DRAWS,
    )
    return figures, {}


CHECK = CheckDef(
    name="marginals_and_copies",
    figures=(
        "tvd_1way",
        "tvd_2way",
        "exact_copy_share",
        "exact_copy_holdout_share",
        "exact_copy_excess",
    ),
    compute=compute,
    gates=(
        Threshold(
            "tvd_1way",
            "max",
            0.1,
            "utility",
            description="mean total-variation distance of the 1-way marginals, synthetic "
            "vs holdout",
            notes="on the public discretised domain",
        ),
        Threshold(
            "tvd_2way",
            "max",
            0.2,
            "utility",
            description="mean total-variation distance of the 2-way marginals, synthetic "
            "vs holdout",
            notes="all pairs; a one-column table scores its 1-way TVD",
        ),
        Threshold(
            "exact_copy_excess",
            "max",
            0.03,
            "privacy",
            description="share of synthetic rows copying a training row minus the share "
            "copying a holdout row",
            notes="equal-size samples; rows compared after normalising each declared type",
        ),
    ),
    uses=("marginals.py", "utility.py", "copies.py"),
)
