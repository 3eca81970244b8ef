"""The one-run privacy audit of a release (issue 15), on a public surrogate.

The recipe:

1. **surrogate**: the release's own synthetic table (a DP output, so the audit costs no
   budget), at most ``max_rows`` rows (:data:`SURROGATE_ROWS` for DP-SGD);
2. **canaries**: over the release's domain, each included by an independent fair coin:
   :func:`~.canaries.design_canaries` (one 1-way cell each) for MST and AIM,
   :func:`~.canaries.design_pair_canaries` (pairs of values the surrogate lacks) for
   DP-SGD, whose attack reads its network's pair weights;
3. **fit**: the same generator, parameters, domain and epsilon, fitted once on the
   surrogate plus the included canaries (its progress lines silenced);
4. **attack**: a score per canary (:mod:`.attacks`);
5. **guesses**: "in" for the ``k`` highest scores and "out" for the ``k`` lowest, for
   each ``k`` of a fixed grid; each ``k`` is tested at ``(1 - confidence) / len(grid)``
   (Bonferroni), and the largest bound is the audit's (:mod:`.bound`).

Everything it reads is public (the synthetic table, the public domain, fresh coins), so
its figures are public: they go to the manifest and the datasheet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import AuditError
from synthrelease.generators.base import DPGenerator, quiet_fits
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.validators.audit.attacks import score_canaries
from synthrelease.validators.audit.bound import epsilon_lower_bound
from synthrelease.validators.audit.canaries import design_canaries, design_pair_canaries

CONFIDENCE = 0.95
ONE_RUN = "one-run audit (Steinke, Nasr & Jagielski, NeurIPS 2023)"
# DP-SGD's fit time grows with the rows (epochs x rows): a smaller surrogate keeps the
# audit under one fit of the release (measured: 8,000 rows also gives its attack more
# power per canary, bench/bench_audit.py). MST and AIM cost little per row.
SURROGATE_ROWS = {"dpsgd": 8_000}
# k: "in" for the top k scores, "out" for the bottom k. No k = 4: 8 of 8 right happens by
# chance 1 time in 256 and would refute epsilon 0.2 alone (false refusals cost budget).
GUESS_GRID = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class AuditResult:
    """The audit's public figures."""

    method: str
    attack: str
    canaries: int
    included: int
    guesses: int
    correct: int
    epsilon_lower_bound: float
    ceiling: float  # the largest bound these canaries could show (every guess right)
    confidence: float
    epsilon: float
    delta: float
    surrogate_rows: int
    seconds: float

    @property
    def passed(self) -> bool:
        """The bound is at or below the claimed epsilon."""
        return self.epsilon_lower_bound <= self.epsilon

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def public_audit(audit: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the manifest and the datasheet state of the audit (all of it is public: it
    read only the synthetic table), with how to read it; a failed audit says so."""
    if not isinstance(audit, Mapping) or audit.get("error"):
        return {"ran": False, "meaning": "the privacy audit did not run; the gate refuses"}
    keep = {k: audit.get(k) for k in AUDIT_KEYS}
    return {
        "ran": True,
        **keep,
        "meaning": MEANING,
    }


AUDIT_KEYS = (
    "method",
    "attack",
    "canaries",
    "included",
    "guesses",
    "correct",
    "epsilon_lower_bound",
    "ceiling",
    "confidence",
    "epsilon",
    "surrogate_rows",
)
MEANING = (
    "an empirical LOWER bound on the generator's epsilon, measured by refitting it on the "
    "synthetic table plus canaries included by fair coins; a bound above the stated "
    "epsilon would expose an implementation bug (missing noise, wrong sensitivity). It "
    "never proves the stated epsilon, which rests on the accounting (docs/privacy-audit.md)"
)


def _grid(m: int) -> list[int]:
    return [k for k in GUESS_GRID if 2 * k <= m] or [max(m // 2, 1)]


def ceiling(m: int, *, delta: float, confidence: float) -> float:
    """The largest bound ``m`` canaries can show: every guess right at the best ``k``.
    A release whose epsilon is above it cannot be refuted by this audit (low power)."""
    grid = _grid(m)
    significance = (1.0 - confidence) / len(grid)
    return max(
        epsilon_lower_bound(
            canaries=m, guesses=2 * k, correct=2 * k, delta=delta, significance=significance
        )
        for k in grid
    )


def best_guess(
    scores: np.ndarray, included: np.ndarray, *, delta: float, confidence: float
) -> tuple[int, int, float]:
    """(guesses, correct, bound) of the best ``k`` of :data:`GUESS_GRID` (step 5)."""
    m = scores.size
    grid = _grid(m)
    significance = (1.0 - confidence) / len(grid)
    order = np.argsort(scores, kind="stable")
    best = (0, 0, 0.0)
    for k in grid:
        correct = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
        bound = epsilon_lower_bound(
            canaries=m, guesses=2 * k, correct=correct, delta=delta, significance=significance
        )
        if bound > best[2] or best[0] == 0:
            best = (2 * k, correct, bound)
    return best


def audit_generator(
    make: Callable[[], DPGenerator],
    surrogate: pd.DataFrame,
    *,
    noise: NoiseSource,
    rng: np.random.Generator,
    max_rows: int = 50_000,
    max_canaries: int = 1_000,
    confidence: float = CONFIDENCE,
) -> AuditResult:
    """Audit the generator ``make()`` builds (unfitted: same kind, parameters, domain,
    epsilon and delta as the release's) on ``surrogate`` (public rows); see the module
    docstring. ``noise`` feeds the audit fit's mechanisms (secure in a release)."""
    start = time.perf_counter()
    generator = make()
    discretiser = getattr(generator, "discretiser", None)
    if discretiser is None:
        raise AuditError("the audit needs the release's resolved domain")
    names = list(discretiser.names)
    max_rows = min(max_rows, SURROGATE_ROWS.get(generator.name, max_rows))
    if len(surrogate) > max_rows:
        surrogate = surrogate.sample(max_rows, random_state=rng)
    if len(surrogate) < 2:
        raise AuditError("the surrogate table is empty")
    codes = discretiser.encode(surrogate[names]).to_numpy(np.int64)
    sizes = list(discretiser.sizes.values())
    if generator.name == "dpsgd":  # its attack reads pairs of values (see .canaries)
        canaries = design_pair_canaries(codes, sizes, limit=max_canaries, rng=rng)
    else:
        canaries = design_canaries(codes, sizes, limit=max_canaries)
    included = np.less(rng.random(canaries.shape[0]), 0.5)
    rows = discretiser.decode(pd.DataFrame(canaries, columns=names), rng)
    table = pd.concat([surrogate[names], rows[included]], ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    with quiet_fits():
        generator.fit(SensitiveTable(table, label="audit surrogate"), noise=noise)
    attack, scores = score_canaries(generator, codes, canaries, rows)
    if not np.all(np.isfinite(scores)):
        raise AuditError("the attack's scores are not finite")
    m = int(canaries.shape[0])
    guesses, correct, bound = best_guess(
        scores, included, delta=generator.delta, confidence=confidence
    )
    return AuditResult(
        method=ONE_RUN,
        attack=attack,
        canaries=m,
        included=int(included.sum()),
        guesses=guesses,
        correct=correct,
        epsilon_lower_bound=math.ceil(bound * 1e4) / 1e4,  # rounded up: never below
        ceiling=math.floor(ceiling(m, delta=generator.delta, confidence=confidence) * 100) / 100,
        confidence=confidence,
        epsilon=generator.epsilon,
        delta=generator.delta,
        surrogate_rows=len(surrogate),
        seconds=round(time.perf_counter() - start, 2),
    )
