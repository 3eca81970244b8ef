"""Distance to closest record (DCR), nearest-neighbour distance ratio (NNDR) and near
copies of ``attack_rows`` synthetic rows against equal-size training and holdout
references (``distance.py``, Gower-style distances on ``encoding.py``'s matrix)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.distance import distance_figures
from synthrelease.validators.samples import Samples, first


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    return distance_figures(
        synthetic=first(samples.encoded_synth, samples.settings.attack_rows),
        train=samples.encoded_train,
        holdout=samples.encoded_hold,
        rng=rng,
    )


CHECK = CheckDef(
    name="distance",
    figures=(
        "dcr_train_share",
        "nndr_train_share",
        "near_copy_share",
        "near_copy_holdout_share",
        "near_copy_excess",
    ),
    compute=compute,
    gates=(
        Threshold(
            "near_copy_excess",
            "max",
            0.05,
            "privacy",
            description="share of synthetic rows near a training row minus the share near "
            "a holdout row",
            notes="near: within mean Gower distance 0.01",
        ),
        Threshold(
            "dcr_train_share",
            "max",
            0.6,
            "privacy",
            description="share of synthetic rows closer to training rows than to holdout rows",
            notes="ties count one half; ~0.5 without memorisation",
        ),
        Threshold(
            "nndr_train_share",
            "max",
            0.6,
            "privacy",
            description="share of synthetic rows with a smaller nearest-neighbour distance "
            "ratio to training rows than to holdout rows",
        ),
    ),
    uses=("distance.py", "neighbours.py", "encoding.py"),
)
