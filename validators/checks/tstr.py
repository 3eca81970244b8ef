"""Train-synthetic/test-real against train-real/test-real on equal-size samples, for the
spec's ``target`` only (``tstr.py``: HistGradientBoosting). The ``_low``/``_high``
figures are 95% bootstrap intervals over the holdout test rows (reported, not gated)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.features import typed_frame
from synthrelease.validators.samples import Samples, shuffled
from synthrelease.validators.tstr import tstr_figures


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    if samples.target is None:
        raise ValueError("TSTR needs a target")
    typed_synth = samples.typed_synth
    fit = min(len(typed_synth), len(samples.train_all), samples.settings.sample_rows)
    typed_train = typed_frame(shuffled(samples.train_all, fit, rng), samples.specs)
    return tstr_figures(
        synthetic=typed_synth.iloc[:fit],
        train=typed_train,
        holdout=samples.typed_hold,
        specs=samples.specs,
        target=samples.target,
        seed=int(rng.integers(2**31)),
    )


CHECK = CheckDef(
    name="tstr",
    figures=(
        "tstr_score",
        "trtr_score",
        "tstr_gap",
        "tstr_score_low",
        "tstr_score_high",
        "trtr_score_low",
        "trtr_score_high",
        "tstr_gap_low",
        "tstr_gap_high",
    ),
    compute=compute,
    needs_target=True,
    gates=(
        Threshold(
            "tstr_gap",
            "max",
            0.15,
            "utility",
            description="train-real minus train-synthetic score of a gradient-boosting "
            "model for the target, tested on holdout rows (AUC, macro-F1 or R2)",
            notes="HistGradientBoosting; AUC (binary), macro-F1 (multiclass), R2 (numeric)",
        ),
    ),
    uses=("tstr.py", "features.py"),
)
