"""Issue 15, DP-SGD: the one-run privacy audit passes an honest DP-SGD fit and refuses
DP-SGD without clipping (tests/broken_generators.py: opacus' clip coefficients all 1, the
noise still calibrated to the clip norm), at epsilon 3 as the demo spec's DP-SGD.

The attack reads the MADE's direct layer, one weight per pair of values of two columns,
so its power grows with the number of pairs of columns: 24 columns of 16 values (276
pairs) let it call all 256 guesses right. 2,000 rows, a one-layer MADE, ten epochs; the
noise and the coins are seeded, so the figures are the same on every run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from synthrelease.generators.dpsgd.generator import DPSGDGenerator
from synthrelease.generators.noise import NoiseSource
from synthrelease.spec import Column
from synthrelease.validators.audit import audit_generator
from tests.broken_generators import no_clipping
from tests.test_privacy_audit import gate_passes_audit

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
]

VALUES = [f"v{i}" for i in range(16)]
COLUMNS = {
    f"c{j}": TypeAdapter(Column).validate_python({"type": "categorical", "categories": VALUES})
    for j in range(24)
}
PARAMS = {"epochs": 10, "batch_size": 256, "hidden": [32], "device": "cpu"}
EPSILON = 3.0


def surrogate(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Independent columns: v0 60%, v1 25%, v2..v15 about 1% each."""
    rng = np.random.default_rng(seed)
    p = np.r_[0.6, 0.25, np.full(14, 0.15 / 14)]
    codes = rng.choice(16, size=(rows, len(COLUMNS)), p=p)
    return pd.DataFrame({c: np.array(VALUES)[codes[:, j]] for j, c in enumerate(COLUMNS)})


def _audit(frame: pd.DataFrame):
    return audit_generator(
        lambda: DPSGDGenerator(COLUMNS, epsilon=EPSILON, delta=1e-6, params=PARAMS),
        frame,
        noise=NoiseSource.seeded(7),
        rng=np.random.default_rng(11),
        max_canaries=500,
    )


def test_the_audit_passes_honest_dpsgd_and_refuses_dpsgd_without_clipping():
    frame = surrogate()
    honest = _audit(frame)
    with no_clipping():
        broken = _audit(frame)
    assert honest.canaries == broken.canaries == 500 and "direct-layer" in honest.attack
    assert honest.passed and honest.epsilon_lower_bound <= 1.0, honest
    assert not broken.passed and broken.epsilon_lower_bound > EPSILON + 0.5, broken
    assert gate_passes_audit(honest.to_dict(), epsilon=EPSILON)
    assert not gate_passes_audit(broken.to_dict(), epsilon=EPSILON)  # the gate refuses
