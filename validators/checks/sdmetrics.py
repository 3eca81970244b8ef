"""SDMetrics QualityReport and DiagnosticReport scores, synthetic vs holdout, on
``sample_rows`` rows per table (``sdmetrics_reports.py``)."""

from __future__ import annotations

import numpy as np

from synthrelease.validators.checks.base import CheckDef, Result, Threshold
from synthrelease.validators.samples import Samples
from synthrelease.validators.sdmetrics_reports import sdmetrics_figures


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    return sdmetrics_figures(
        real=samples.typed_hold, synthetic=samples.typed_synth, specs=samples.specs
    )


CHECK = CheckDef(
    name="sdmetrics",
    figures=(
        "quality_score",
        "quality_column_shapes",
        "quality_column_pair_trends",
        "diagnostic_score",
        "diagnostic_data_validity",
        "diagnostic_data_structure",
    ),
    compute=compute,
    gates=(
        Threshold(
            "quality_score",
            "min",
            0.7,
            "utility",
            description="SDMetrics QualityReport score (column shapes, column-pair trends)",
            notes="SDMetrics 0.32; a property with an errored metric is NaN",
        ),
        Threshold(
            "diagnostic_score",
            "min",
            0.9,
            "utility",
            description="SDMetrics DiagnosticReport score (data validity and structure)",
        ),
    ),
    uses=("sdmetrics_reports.py",),
)
