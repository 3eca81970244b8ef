"""Power check on the demo table: a non-DP SDV synthesizer trained to overfit is blocked.

SDV 2.0's TVAE (no DP) is trained for 500 epochs on 300 Adult rows, so it memorises
them; its output goes through the same validators and gate as a release (the demo
spec's thresholds and defaults). The privacy checks must block it; the DP release of the
same table passes every check (tests/test_release_flow.py, test_demo_passes_every_check).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import load_spec
from synthrelease.validators.evaluation import Settings
from synthrelease.validators.expectations import run_expectations
from synthrelease.validators.gate import evaluate_gate
from synthrelease.validators.real import evaluate_against_real
from tests.conftest import ADULT_SPEC, ROOT

pytestmark = pytest.mark.integration
ROWS, EPOCHS = 300, 500
PRIVACY_CHECKS = {
    "exact_copy_excess",
    "near_copy_excess",
    "dcr_train_share",
    "nndr_train_share",
    "mia_auc",
    "singling_out_risk",
    "linkability_risk",
    "inference_risk",
}


def _adult(name: str) -> pd.DataFrame:
    frame = pd.read_csv(ROOT / "data" / "adult" / name, keep_default_na=False, na_values=[""])
    return frame.sample(ROWS, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def overfit():
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import TVAESynthesizer

    train, holdout = _adult("adult_train.csv"), _adult("adult_test.csv")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata = Metadata.detect_from_dataframes({"t": train})  # SDV 2.0 API
            synthesizer = TVAESynthesizer(metadata, epochs=EPOCHS, batch_size=ROWS)
            synthesizer.fit({"t": train})
            synthetic = synthesizer.sample(num_rows=1000)
    finally:
        torch.set_num_threads(threads)
    synthetic = synthetic["t"] if isinstance(synthetic, dict) else synthetic
    return train, holdout, synthetic


def test_overfit_non_dp_synthesizer_is_blocked_by_the_privacy_checks(overfit):
    train, holdout, synthetic = overfit
    spec = load_spec(ADULT_SPEC)
    evaluation = evaluate_against_real(
        train=SensitiveTable(train, label="train"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=synthetic,
        discretiser=Discretiser(spec.columns, default_bins=32),
        target=spec.target,
        rng=np.random.default_rng(0),
        settings=Settings.from_gate(spec.gate),
    )
    expectations = run_expectations(synthetic, spec.columns, expected_rows=1000)
    verdict = evaluate_gate(
        figures=evaluation.figures, expectations=expectations, gate=spec.gate, target=spec.target
    )
    failed = {c.name for c in verdict.failed}
    assert verdict.passed is False
    assert failed & PRIVACY_CHECKS, (failed, {k: evaluation.figures.get(k) for k in PRIVACY_CHECKS})
    # memorisation shows as synthetic rows sitting closer to (or next to) training rows;
    # over torch seeds 0-4 near copies always flag it, the DCR share in four of five
    assert failed & {"dcr_train_share", "near_copy_excess"}
