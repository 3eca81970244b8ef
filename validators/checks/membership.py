"""A DOMIAS-style density-ratio membership-inference attack: ``attack_rows`` members
and non-members, the rest of the holdout as reference (``membership.py``)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.membership import membership_attack
from synthrelease.validators.samples import Samples, first


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    rows, half = samples.settings.attack_rows, len(samples.hold) // 2
    hold = samples.encoded_hold
    return membership_attack(
        members=first(samples.encoded_train, min(rows, half)),
        non_members=first(hold, min(rows, half)),
        reference=hold.take(np.arange(half, len(samples.hold))),
        synthetic=samples.encoded_synth,
        rng=rng,
    )


CHECK = CheckDef(
    name="membership",
    figures=("mia_auc", "mia_auc_low", "mia_auc_high"),
    compute=compute,
    gates=(
        Threshold(
            "mia_auc",
            "max",
            0.6,
            "privacy",
            description="AUC of a membership-inference attack (DOMIAS-style density "
            "ratio); 0.5 is no signal",
            notes="kNN densities; 95% bootstrap interval in the report",
        ),
    ),
    uses=("membership.py", "neighbours.py"),
)
