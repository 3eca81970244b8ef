"""A public stand-in table over a spec's discretised domain, for the plan's simulation.

No row of the real table is read: the stand-in is drawn from a random, seeded
distribution shaped like typical tables (measured on the demo table and the public tables
of ``tests/public_tables.py``, see ``bench/bench_first_try.py``):

- **1-way shapes**: a categorical column is Zipf-like over its labels (exponent
  :data:`ZIPF`, labels in random order; the ``other`` bucket is rare, since a draft sends
  only values seen in few rows there); a boolean column has a random share in
  [0.1, 0.5]; a binned numeric column puts its mass on a bump covering about
  :data:`BUMP_SHARE` of its bins, or (one column in :data:`SPIKE_ODDS`) mostly in one
  bin, as zero-heavy amounts do; a date column is spread evenly over its bins (records
  accrue over the drafted period: weather's hourly ``time_hour`` fills 94% of its bins'
  entropy); a nullable column has :data:`NULL_SHARE` nulls;
- **dependence**: each column has up to two parents among the columns before it (in a
  random order); each parent value tilts the child's marginal by ``exp(TILT * z)``,
  ``z`` standard normal per (parent value, child value). Two parents make structure
  that a tree (MST) cannot hold and a 2-way workload only approximates, as real tables
  have.

With a DP measurement of the table's 1-way marginals (``plan --measure``,
:mod:`~synthrelease.planning.shapes`), those replace the prior's 1-way shapes.

What the stand-in cannot know is the real table's own structure; the plan says so, and
``bench/bench_first_try.py`` measures how far its predictions land from the real figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthrelease.errors import SpecError
from synthrelease.generators.domain import ColumnCoder, Discretiser
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn

ZIPF = 1.8
BUMP_SHARE = 0.25  # the real tables' binned numerics: 25-65% of their bins' entropy
SPIKE_ODDS = 0.4
NULL_SHARE = 0.01
OTHER_SHARE = 0.005
TILT = 1.0
SECOND_TILT = 1.0  # a second parent: structure a tree cannot hold


@dataclass(frozen=True)
class StandIn:
    """A seeded distribution over the discretised domain: per-column marginals, a tree
    of parents and per-parent-value conditionals. :meth:`codes` draws rows."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    order: tuple[int, ...]  # sampling order (parents first)
    parents: tuple[int | None, ...]  # by column index
    tables: tuple[np.ndarray, ...]  # by column index: (parent size, size) or (1, size)
    seconds: tuple[int | None, ...] = ()  # a second parent, by column index
    tilts: tuple[np.ndarray | None, ...] = ()  # its tilt: (second's size, size)

    def codes(self, rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """``rows`` rows of integer codes (ancestral sampling)."""
        out = np.zeros((len(self.sizes), rows), dtype=np.int64)
        for i in self.order:
            table = self.tables[i]
            parent = self.parents[i]
            given = np.zeros(rows, dtype=np.int64) if parent is None else out[parent]
            probs = table[given]
            second = self.seconds[i] if self.seconds else None
            if second is not None:
                tilt = self.tilts[i]
                assert tilt is not None
                probs = probs * tilt[out[second]]
                probs = probs / probs.sum(axis=1, keepdims=True)
            cdf = np.cumsum(probs, axis=1)
            cdf[:, -1] = 1.0
            u = rng.random(rows)
            out[i] = (u[:, None] > cdf).sum(axis=1)
        return pd.DataFrame({n: out[i] for i, n in enumerate(self.names)})


def _marginal(coder: ColumnCoder, rng: np.random.Generator) -> np.ndarray:
    """A typical 1-way shape for the column's codes (null code last, when nullable)."""
    k = coder.bins
    spec = coder.spec
    if isinstance(spec, BooleanColumn):
        share = rng.uniform(0.1, 0.5)
        p = np.array([1 - share, share])[rng.permutation(2)]
    elif isinstance(spec, CategoricalColumn):
        has_other = spec.other is not None
        labels = k - 1 if has_other else k
        p = np.zeros(k)
        weights = (np.arange(labels) + 1.0) ** -ZIPF
        p[:labels] = weights[rng.permutation(labels)]
        p[:labels] /= p[:labels].sum()
        if has_other:
            p[:labels] *= 1 - OTHER_SHARE
            p[labels] = OTHER_SHARE
    elif isinstance(spec, DatetimeColumn):
        p = np.ones(k)
    elif coder.integer_steps() and k <= 40:  # one code per integer: a small count scale
        weights = (np.arange(k) + 1.0) ** -ZIPF
        p = weights[rng.permutation(k)] / weights.sum()
    elif rng.random() < SPIKE_ODDS:
        p = np.full(k, 0.1 / max(k - 1, 1))
        p[int(rng.integers(k))] = 0.9
        if k == 1:
            p[0] = 1.0
    else:
        width = max(BUMP_SHARE * k / 4.0, 0.5)  # about BUMP_SHARE of the bins within +-2 sd
        centre = rng.uniform(0.3, 0.7) * (k - 1)
        x = np.arange(k)
        p = np.exp(-0.5 * ((x - centre) / width) ** 2) + 1e-4
    p = p / p.sum()
    if coder.nullable:
        p = np.append(p * (1 - NULL_SHARE), NULL_SHARE)
    return p


def stand_in(
    discretiser: Discretiser, *, seed: int, shapes: Mapping[str, np.ndarray] | None = None
) -> StandIn:
    """The seeded stand-in distribution over ``discretiser``'s domain. ``shapes``: 1-way
    marginals (a DP measurement, :mod:`~synthrelease.planning.shapes`) that replace the
    prior's shapes of their columns; the dependence still comes from the prior (the same
    parents and tilts as without them)."""
    rng = np.random.default_rng(seed)
    coders = list(discretiser.coders.values())
    d = len(coders)
    marginals = [_marginal(c, rng) for c in coders]  # drawn in any case: the same stream
    for i, name in enumerate(discretiser.names):
        given = None if shapes is None else shapes.get(name)
        if given is not None:
            if len(given) != coders[i].size:
                raise SpecError(f"the 1-way shape of column {name!r} is not over its domain")
            marginals[i] = np.asarray(given, dtype=float) / float(np.sum(given))
    order = tuple(int(i) for i in rng.permutation(d))
    parents: list[int | None] = [None] * d
    tables: list[np.ndarray] = [m[None, :] for m in marginals]
    seconds: list[int | None] = [None] * d
    tilts: list[np.ndarray | None] = [None] * d
    for position, i in enumerate(order[1:], start=1):
        parent = order[int(rng.integers(position))]
        parents[i] = parent
        tilt = np.exp(TILT * rng.standard_normal((marginals[parent].size, marginals[i].size)))
        table = marginals[i][None, :] * tilt
        tables[i] = table / table.sum(axis=1, keepdims=True)
        if position >= 2:
            second = order[int(rng.integers(position))]
            if second != parent:
                seconds[i] = second
                shape = (marginals[second].size, marginals[i].size)
                tilts[i] = np.exp(SECOND_TILT * rng.standard_normal(shape))
    return StandIn(
        names=tuple(discretiser.names),
        sizes=tuple(c.size for c in coders),
        order=order,
        parents=tuple(parents),
        tables=tuple(tables),
        seconds=tuple(seconds),
        tilts=tuple(tilts),
    )
