"""Anonymeter-style attribute inference, pooled over every column as the secret:
``attack_rows`` training targets and holdout controls (``inference.py``)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.inference import inference_risk
from synthrelease.validators.samples import Samples, first


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    rows = samples.settings.attack_rows
    return inference_risk(
        synthetic=samples.encoded_synth,
        targets=first(samples.encoded_train, rows),
        controls=first(samples.encoded_hold, rows),
        rng=rng,
    )


CHECK = CheckDef(
    name="inference",
    figures=("inference_risk", "inference_risk_low", "inference_risk_high"),
    compute=compute,
    gates=(
        Threshold(
            "inference_risk",
            "max",
            0.1,
            "privacy",
            description="attribute-inference risk pooled over all columns, residual over a "
            "holdout control (anonymeter manner)",
            notes="numeric secrets: within 5% of the declared range",
        ),
    ),
    uses=("inference.py", "risk.py"),
)
