"""Per-column distributions and the association (Cramér's V) matrices for the internal
report's plots (``distributions.py``); its one figure, ``association_gap``, is reported
but not gated."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result
from synthrelease.validators.distributions import (
    association_gap,
    association_matrix,
    distributions,
)
from synthrelease.validators.samples import Samples


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    discretiser = samples.discretiser
    real_codes, synth_codes = discretiser.encode(samples.hold), discretiser.encode(samples.synth)
    sizes = discretiser.sizes
    real_assoc = association_matrix(real_codes, sizes)
    synth_assoc = association_matrix(synth_codes, sizes)
    details = {
        "distributions": distributions(
            real_codes=real_codes, synthetic_codes=synth_codes, coders=discretiser.coders
        ),
        "association": {"columns": list(sizes), "real": real_assoc, "synthetic": synth_assoc},
    }
    return {"association_gap": association_gap(real_assoc, synth_assoc)}, details


CHECK = CheckDef(
    name="plots", figures=("association_gap",), compute=compute, uses=("distributions.py",)
)
