"""Anonymeter-style linkability: ``attack_rows`` training targets and holdout controls,
linked on the first and second half of the columns (``linkability.py``)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.linkability import linkability_risk
from synthrelease.validators.samples import Samples, first


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    rows = samples.settings.attack_rows
    return linkability_risk(
        synthetic=samples.encoded_synth,
        targets=first(samples.encoded_train, rows),
        controls=first(samples.encoded_hold, rows),
        rng=rng,
    )


CHECK = CheckDef(
    name="linkability",
    figures=("linkability_risk", "linkability_risk_low", "linkability_risk_high"),
    compute=compute,
    gates=(
        Threshold(
            "linkability_risk",
            "max",
            0.05,
            "privacy",
            description="linkability risk, residual over a holdout control (anonymeter manner)",
            notes="first / second half of the columns",
        ),
    ),
    uses=("linkability.py", "risk.py"),
)
