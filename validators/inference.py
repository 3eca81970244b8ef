"""Attribute-inference risk, in the manner of anonymeter's inference evaluator.

For each secret column, the attacker knows every other column of a target, finds the
nearest synthetic row on those columns and reads the secret off it. A guess is right
when it equals the secret (categories, booleans, nulls) or, for numbers, lies within
``tolerance`` of it in units of the declared range (anonymeter uses 5% of the guess;
the declared range is public and does not blow up near zero). Targets are training
rows; the control attack uses equally many holdout rows.

``inference_risk`` pools the guesses over all secret columns into one residual risk
(:mod:`.risk`): per-column residuals are noisy when the control already guesses most
secrets (the denominator ``1 - control`` is small), and the maximum over columns of
noisy values is biased upwards. Per-column risks go to the internal report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthrelease.validators.encoding import NULL_NUMERIC, MixedMatrix
from synthrelease.validators.neighbours import nearest_leaving_out_each
from synthrelease.validators.risk import residual_risk

DEFAULT_TOLERANCE = 0.05


def inference_risk(
    *,
    synthetic: MixedMatrix,
    targets: MixedMatrix,
    controls: MixedMatrix,
    rng: np.random.Generator,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``inference_risk`` (pooled, with its interval) plus per-column details."""
    if targets.rows != controls.rows:
        raise ValueError("targets and controls must be equally many")
    shuffled = synthetic.take(rng.permutation(synthetic.rows))  # random tie-breaking
    right = _correct(targets, shuffled, tolerance)  # (n, d) bool
    right_control = _correct(controls, shuffled, tolerance)
    n, d = right.shape
    pooled = residual_risk(
        attacks=n * d,
        successes=int(right.sum()),
        control_attacks=n * d,
        control_successes=int(right_control.sum()),
    )
    per_column = {}
    for j, name in enumerate(synthetic.names):
        risk = residual_risk(
            attacks=n,
            successes=int(right[:, j].sum()),
            control_attacks=n,
            control_successes=int(right_control[:, j].sum()),
        )
        per_column[name] = risk.to_dict()
    figures = {
        "inference_risk": pooled.value,
        "inference_risk_low": pooled.low,
        "inference_risk_high": pooled.high,
    }
    details = {
        "targets": n,
        "tolerance": tolerance,
        **{f"risk_{key}": value for key, value in pooled.to_dict().items()},
        "per_column": per_column,
    }
    return figures, details


def _correct(rows: MixedMatrix, synthetic: MixedMatrix, tolerance: float) -> np.ndarray:
    idx = nearest_leaving_out_each(rows, synthetic)  # (n, d)
    guesses = np.take_along_axis(synthetic.values, idx, axis=0)  # column j from idx[:, j]
    truth = rows.values
    exact = guesses == truth
    close = (
        (np.abs(guesses - truth) <= tolerance) & (guesses != NULL_NUMERIC) & (truth != NULL_NUMERIC)
    )
    return np.where(rows.categorical[None, :], exact, exact | close)
