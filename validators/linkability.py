"""Linkability risk, in the manner of anonymeter's linkability evaluator.

The attacker holds two datasets that describe the same people with disjoint column
sets (``aux``: by default the first and the second half of the declared columns) and
tries to link their records through the synthetic table: for each target row, find
its nearest synthetic row on the first column set and on the second; the link succeeds
when both searches return the same synthetic row (``neighbours`` > 1: when the two
lists of nearest rows share one). Targets are training rows; the control attack uses
equally many holdout rows. The residual risk (:mod:`.risk`) is the linkability risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from synthrelease.validators.encoding import MixedMatrix
from synthrelease.validators.neighbours import nearest
from synthrelease.validators.risk import residual_risk


def default_aux(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """First half and second half of the declared columns."""
    if len(names) < 2:
        raise ValueError("linkability needs at least two columns")
    half = (len(names) + 1) // 2
    return list(names[:half]), list(names[half:])


def linkability_risk(
    *,
    synthetic: MixedMatrix,
    targets: MixedMatrix,
    controls: MixedMatrix,
    rng: np.random.Generator,
    aux: tuple[Sequence[str], Sequence[str]] | None = None,
    neighbours: int = 1,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``linkability_risk`` (and its interval) plus details for the internal report."""
    if targets.rows != controls.rows:
        raise ValueError("targets and controls must be equally many")
    first, second = aux if aux is not None else default_aux(synthetic.names)
    if not first or not second or set(first) & set(second):
        raise ValueError("aux must be two non-empty, disjoint column sets")
    cols_a, cols_b = synthetic.columns(first), synthetic.columns(second)
    shuffled = synthetic.take(rng.permutation(synthetic.rows))  # random tie-breaking
    k = min(neighbours, shuffled.rows)
    hits = _links(targets, shuffled, cols_a, cols_b, k)
    control_hits = _links(controls, shuffled, cols_a, cols_b, k)
    risk = residual_risk(
        attacks=targets.rows,
        successes=hits,
        control_attacks=controls.rows,
        control_successes=control_hits,
    )
    figures = {
        "linkability_risk": risk.value,
        "linkability_risk_low": risk.low,
        "linkability_risk_high": risk.high,
    }
    details = {
        "aux_columns": [list(first), list(second)],
        "neighbours": k,
        "targets": targets.rows,
        **{f"risk_{key}": value for key, value in risk.to_dict().items()},
    }
    return figures, details


def _links(
    rows: MixedMatrix, synthetic: MixedMatrix, cols_a: list[int], cols_b: list[int], k: int
) -> int:
    _, idx_a = nearest(rows, synthetic, k=k, columns=cols_a)
    _, idx_b = nearest(rows, synthetic, k=k, columns=cols_b)
    linked = (idx_a[:, :, None] == idx_b[:, None, :]).any(axis=(1, 2))
    return int(linked.sum())
