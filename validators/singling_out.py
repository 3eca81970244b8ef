"""Singling-out risk, in the manner of anonymeter's multivariate evaluator.

The attacker reads the synthetic table and writes predicates that match exactly one
synthetic row: a random synthetic row, ``n_cols`` random columns, and per column
``== value`` (categories, booleans, nulls) or ``>= value`` / ``<= value`` (numbers,
towards the tail: ``>=`` above the synthetic median, ``<=`` below). The attack succeeds
when a predicate also matches exactly one row of the training sample; the control
attack counts predicates matching exactly one row of an equal-size holdout sample.
The residual risk (:mod:`.risk`) is the singling-out risk.

As in anonymeter, the rates are taken over the number of *requested* predicates, so an
attacker who cannot write that many unique predicates has a lower success rate.
Differences: predicates are evaluated on encoded matrices (values scaled by the declared
bounds), the training sample has the control's size (no size-correction model), and
nothing is logged beyond counts of predicates.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from synthrelease.validators.encoding import NULL_NUMERIC, MixedMatrix
from synthrelease.validators.risk import residual_risk

logger = logging.getLogger(__name__)

EQ, LE, GE = 0, 1, 2
DEFAULT_QUERIES = 500
DEFAULT_COLUMNS = 3
ATTEMPTS_PER_QUERY = 20
_BATCH = 256


def singling_out_risk(
    *,
    synthetic: MixedMatrix,
    train: MixedMatrix,
    control: MixedMatrix,
    rng: np.random.Generator,
    queries: int = DEFAULT_QUERIES,
    n_cols: int = DEFAULT_COLUMNS,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``singling_out_risk`` (and its interval) plus details for the internal report."""
    if train.rows != control.rows:
        raise ValueError("the training sample and the control must have the same size")
    if queries < 1:
        raise ValueError("queries must be at least 1")
    n_cols = max(1, min(n_cols, len(synthetic.names)))
    found = _unique_predicates(synthetic, rng, queries=queries, n_cols=n_cols)
    hits_train = int((_counts(train, *found) == 1).sum()) if found[0].size else 0
    hits_control = int((_counts(control, *found) == 1).sum()) if found[0].size else 0
    risk = residual_risk(
        attacks=queries,
        successes=hits_train,
        control_attacks=queries,
        control_successes=hits_control,
    )
    figures = {
        "singling_out_risk": risk.value,
        "singling_out_risk_low": risk.low,
        "singling_out_risk_high": risk.high,
    }
    details = {
        "requested_predicates": queries,
        "unique_predicates": int(found[0].shape[0]),
        "columns_per_predicate": n_cols,
        "rows_per_set": train.rows,
        **{f"risk_{k}": v for k, v in risk.to_dict().items()},
    }
    logger.info("singling out: %d of %d predicates written", found[0].shape[0], queries)
    return figures, details


def _unique_predicates(
    synthetic: MixedMatrix, rng: np.random.Generator, *, queries: int, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicates (columns, ops, values), each (q, n_cols), unique in ``synthetic``."""
    x = synthetic.values
    d = x.shape[1]
    medians = np.array([_median(x[:, j]) for j in range(d)])
    seen: set[bytes] = set()
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    attempts = 0
    while len(seen) < queries and attempts < ATTEMPTS_PER_QUERY * queries:
        rows = rng.integers(0, x.shape[0], size=_BATCH)
        cols = np.argsort(rng.random((_BATCH, d)), axis=1)[:, :n_cols]
        cols.sort(axis=1)
        values = x[rows[:, None], cols]
        ops = np.full(cols.shape, EQ)
        numeric = ~synthetic.categorical[cols] & (values != NULL_NUMERIC)
        ops[numeric & (values > medians[cols])] = GE
        ops[numeric & (values <= medians[cols])] = LE
        attempts += _BATCH
        unique = _counts(synthetic, cols, ops, values) == 1
        for i in np.flatnonzero(unique):
            key = np.concatenate([cols[i], ops[i], values[i]]).tobytes()
            if key not in seen and len(seen) < queries:
                seen.add(key)
                kept.append((cols[i], ops[i], values[i]))
    if not kept:
        empty = np.empty((0, n_cols))
        return empty.astype(np.int64), empty.astype(np.int64), empty
    return tuple(np.stack(part) for part in zip(*kept))  # type: ignore[return-value]


def _counts(
    table: MixedMatrix, cols: np.ndarray, ops: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """How many rows of ``table`` each predicate matches."""
    out = np.empty(cols.shape[0], dtype=np.int64)
    xt = table.values.T  # (d, n)
    for start in range(0, cols.shape[0], _BATCH):
        stop = start + _BATCH
        match = np.ones((min(stop, cols.shape[0]) - start, xt.shape[1]), dtype=bool)
        for t in range(cols.shape[1]):
            column = xt[cols[start:stop, t]]  # (b, n)
            v = values[start:stop, t][:, None]
            op = ops[start:stop, t][:, None]
            match &= np.where(
                op == EQ,
                column == v,
                np.where(op == LE, column <= v, (column >= v) & (column <= 1.0)),
            )
        out[start:stop] = match.sum(axis=1)
    return out


def _median(column: np.ndarray) -> float:
    present = column[column != NULL_NUMERIC]
    return float(np.median(present)) if present.size else 0.0
