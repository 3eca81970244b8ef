"""3-way marginal TVD on a seeded workload of at most ``max_marginals`` triples
(``utility.py``); fewer than three columns: the widest marginal there is, the joint.

``kmarginal_score`` restates the same figure on SDNist's k-marginal scale,
``1000 * (1 - tvd_3way)``: 1,000 for identical 3-way marginals, 0 for disjoint ones
(SDNist averages over its own random workload; ours is the seeded one above). Reported,
not gated: the gate reads ``tvd_3way``."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.samples import Samples
from synthrelease.validators.utility import marginal_tvd, sampled_workload


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    discretiser = samples.discretiser
    sizes = discretiser.sizes
    way = min(3, len(sizes))  # fewer columns: the widest marginal there is (the joint)
    workload = sampled_workload(
        sizes, way=way, max_marginals=samples.settings.max_marginals, rng=rng
    )
    value = marginal_tvd(
        discretiser.encode(samples.synth_m),
        discretiser.encode(samples.hold_m),
        sizes,
        way=way,
        workload=workload,
    )
    return {"tvd_3way": value, "kmarginal_score": kmarginal_score(value)}, {
        "marginals": len(workload),
        "way": way,
    }


def kmarginal_score(tvd: float) -> float:
    """SDNist's k-marginal score of a mean k-way TVD: ``1000 * (1 - tvd)``."""
    return 1000.0 * (1.0 - float(tvd))


CHECK = CheckDef(
    name="marginals_3way",
    figures=("tvd_3way", "kmarginal_score"),
    compute=compute,
    gates=(
        Threshold(
            "tvd_3way",
            "max",
            0.5,
            "utility",
            description="mean total-variation distance of (a workload of) 3-way marginals",
            notes="all triples, or 500 drawn at random",
        ),
    ),
    uses=("utility.py",),
)
