"""Anonymeter-style multivariate singling out: ``singling_out_queries`` predicates written
from the synthetic rows, residual risk over a holdout control (``singling_out.py``)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.samples import Samples
from synthrelease.validators.singling_out import singling_out_risk


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    return singling_out_risk(
        synthetic=samples.encoded_synth,
        train=samples.encoded_train,
        control=samples.encoded_hold,
        rng=rng,
        queries=samples.settings.singling_out_queries,
    )


CHECK = CheckDef(
    name="singling_out",
    figures=("singling_out_risk", "singling_out_risk_low", "singling_out_risk_high"),
    compute=compute,
    gates=(
        Threshold(
            "singling_out_risk",
            "max",
            0.1,
            "privacy",
            description="singling-out risk, residual over a holdout control (anonymeter manner)",
        ),
    ),
    uses=("singling_out.py", "risk.py"),
)
