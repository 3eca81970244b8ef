"""Sample equivalence: "as accurate as a random sample of X% of the real training rows".

The 2-way marginal error of the synthetic table is matched against the error of random
samples of the real training rows. For a geometric grid of sample sizes (from 0.1% of
the training part, at least :data:`MIN_ROWS` rows, up to all of it or ``marginal_rows``,
whichever is smaller) :data:`DRAWS` random samples of the training rows are drawn and
each one's mean 2-way TVD against the holdout is measured; the curve of the mean TVD
against the sample size (made non-increasing) is interpolated log-linearly (linear in
the TVD, geometric in the size) at the synthetic table's own 2-way TVD.

Like with like: the synthetic TVD is measured here exactly as ``tvd_2way`` is
(``utility.marginal_tvd`` on the discretiser's codes, the synthetic table and the
holdout each subsampled to ``marginal_rows``: ``Samples.synth_m`` and ``Samples.hold_m``),
and every real sample is compared with that same holdout sample, so the holdout's own
sampling noise is in both sides. With both tables within ``marginal_rows`` rows (and at
most ``max_marginals`` pairs, else a seeded workload of pairs for both sides) it equals
the ``tvd_2way`` figure. Two consequences to read the figure with:

- a synthetic table of S rows carries the sampling noise of S rows, so it can look at
  most about as accurate as S real rows;
- above the holdout's size the curve flattens (the holdout's noise dominates), so a
  match there is poorly resolved: the details give ``holdout_rows`` to judge it.

Outside the grid the fraction is clamped and ``equivalent_sample_clamp`` says so: -1,
less accurate than the smallest sample tried; +1, at least as accurate as the largest
(all the training rows, unless ``marginal_rows`` capped it); 0, interpolated. Reported,
not gated. Work: about ``GRID_POINTS * DRAWS`` TVDs of at most ``marginal_rows`` rows.

Its details also break the matched error down for the report's per-column and per-pair
views (:func:`breakdown`): each column's 1-way TVD, the worst pairs' 2-way TVDs and the
joint shares of the worst few, holdout and synthetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.validators.checks.base import CheckDef, Result
from synthrelease.validators.distributions import column_tvds, pair_table, pair_tvds
from synthrelease.validators.samples import Samples, shuffled
from synthrelease.validators.utility import marginal_tvd, sampled_workload

SMALLEST_FRACTION = 0.001
MIN_ROWS = 10
GRID_POINTS = 9
DRAWS = 2
LISTED_PAIRS = 20
SHOWN_PAIRS = 6


def compute(samples: Samples, rng: np.random.Generator) -> Result:
    discretiser = samples.discretiser
    sizes = discretiser.sizes
    way = min(2, len(sizes))  # one column: its 1-way TVD, as tvd_2way
    workload = sampled_workload(
        sizes, way=way, max_marginals=samples.settings.max_marginals, rng=rng
    )
    holdout = discretiser.encode(samples.hold_m)
    training_rows, limit = samples.train_rows, samples.settings.marginal_rows
    # the samples come from a pool of at most marginal_rows training rows (a sample of a
    # random sample is a random sample): encoding work stays bounded on large tables
    pool = samples.train_all
    train = discretiser.encode(pool if len(pool) <= limit else shuffled(pool, limit, rng))

    def tvd(codes: pd.DataFrame) -> float:
        return marginal_tvd(codes, holdout, sizes, way=way, workload=workload)

    synthetic = discretiser.encode(samples.synth_m)
    synthetic_tvd = tvd(synthetic)
    rows = grid(training_rows, min(limit, len(train)))  # at most the pool's size
    curve = [
        float(
            np.mean(
                [
                    tvd(train.iloc[rng.choice(len(train), size=n, replace=False)])
                    for _ in range(1 if n == len(train) else DRAWS)
                ]
            )
        )
        for n in rows
    ]
    fraction, clamp = match(synthetic_tvd, rows / training_rows, np.asarray(curve))
    figures = {
        "equivalent_sample_fraction": fraction,
        "equivalent_sample_rows": float(round(fraction * training_rows)),
        "equivalent_sample_clamp": float(clamp),
    }
    details = {
        "synthetic_tvd": synthetic_tvd,
        "way": way,
        "marginals": len(workload),
        "draws": DRAWS,
        "sample_rows": rows.tolist(),
        "sample_fractions": (rows / training_rows).tolist(),
        "sample_tvd": curve,
        "training_rows": training_rows,
        "holdout_rows": len(holdout),
        "synthetic_rows": len(samples.synth_m),
        **breakdown(holdout, synthetic, discretiser.coders, workload if way == 2 else []),
    }
    return figures, details


def breakdown(
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    coders: Mapping[str, Any],
    pairs: Sequence[tuple[str, ...]],
) -> dict[str, Any]:
    """What the report's per-column and per-pair views show: each column's 1-way TVD,
    the :data:`LISTED_PAIRS` worst pairs' 2-way TVDs and the joint shares of the
    :data:`SHOWN_PAIRS` worst (same rows as the matched TVD)."""
    sizes = {name: int(c.size) for name, c in coders.items()}
    worst = pair_tvds(holdout, synthetic, sizes, pairs)
    return {
        "column_tvd": column_tvds(holdout, synthetic, sizes),
        "pair_tvd": [[a, b, value] for a, b, value in worst[:LISTED_PAIRS]],
        "pair_tables": [
            {
                "tvd": value,
                **pair_table(
                    real_codes=holdout, synthetic_codes=synthetic, coders=coders, pair=(a, b)
                ),
            }
            for a, b, value in worst[:SHOWN_PAIRS]
        ],
    }


def grid(train_rows: int, max_rows: int) -> np.ndarray:
    """Sample sizes, geometric from 0.1% of ``train_rows`` (at least :data:`MIN_ROWS`) to
    ``min(train_rows, max_rows)``; distinct, increasing."""
    if train_rows < 1 or max_rows < 1:
        raise ValueError("train_rows and max_rows must be positive")
    top = min(train_rows, max_rows)
    low = min(top, max(MIN_ROWS, int(np.ceil(SMALLEST_FRACTION * train_rows))))
    sizes = np.geomspace(low, top, GRID_POINTS).round().astype(np.int64)
    return np.unique(np.clip(sizes, low, top))


def match(value: float, fractions: np.ndarray, curve: np.ndarray) -> tuple[float, int]:
    """The fraction whose expected TVD is ``value``, and the clamp (-1, 0, +1).

    ``curve[i]`` is the mean TVD at ``fractions[i]`` (increasing); it is made
    non-increasing (running minimum), then interpolated linearly in the TVD and in the
    logarithm of the fraction. A NaN ``value`` raises (the check then fails closed)."""
    if not np.isfinite(value) or not np.all(np.isfinite(curve)):
        raise ValueError("the TVDs to match must be finite")
    falling = np.minimum.accumulate(np.asarray(curve, dtype=float))
    if value > falling[0]:
        return float(fractions[0]), -1
    if value < falling[-1]:
        return float(fractions[-1]), 1
    # np.interp wants increasing x: read the curve from the largest sample down.
    log_fraction = np.interp(value, falling[::-1], np.log(fractions[::-1]))
    return float(np.exp(log_fraction)), 0


CHECK = CheckDef(
    name="sample_equivalence",
    figures=("equivalent_sample_fraction", "equivalent_sample_rows", "equivalent_sample_clamp"),
    compute=compute,
    uses=("utility.py", "distributions.py"),
)
