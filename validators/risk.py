"""Attack success rates and residual risks, in the manner of anonymeter (Giomi et al. 2023).

An attack against the training rows succeeds ``k`` times out of ``n``; the same attack
against *control* rows (real rows the generator never saw) measures what an attacker
gets from the population alone. The residual risk ``(a - c) / (1 - c)`` is the share of
the control attack's failures that the training attack turns into successes: 0 for a
generator that leaks nothing about its training rows, 1 for a perfect leak.

Rates are Wilson score estimates; the risk's error bound propagates both rates' errors.
anonymeter itself (1.1.0) pins numpy < 1.27 and pyarrow < 22, which our pins exclude,
so its three evaluators are re-implemented here in its manner (see ``singling_out``,
``linkability``, ``inference``). Unlike anonymeter, nothing here logs or warns with a
rate: the rates are computed on real rows and stay in the internal report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    value: float
    error: float


@dataclass(frozen=True)
class Risk:
    """A residual risk, clipped to [0, 1], with its confidence interval and raw rates."""

    value: float
    low: float
    high: float
    attack_rate: float
    control_rate: float
    attacks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def success_rate(*, attacks: int, successes: float, confidence: float = DEFAULT_CONFIDENCE) -> Rate:
    """Wilson score estimate of a Bernoulli success rate and its error bound."""
    if attacks < 1:
        raise ValueError("attacks must be at least 1")
    if not 0 <= successes <= attacks:
        raise ValueError("successes must be between 0 and attacks")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    z = float(norm.ppf(0.5 * (1.0 + confidence)))
    z2 = z * z
    denominator = attacks + z2
    rate = (successes + 0.5 * z2) / denominator
    spread = successes * (attacks - successes) / attacks
    return Rate(rate, (z / denominator) * math.sqrt(spread + 0.25 * z2))


def residual_risk(
    *,
    attacks: int,
    successes: float,
    control_attacks: int,
    control_successes: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Risk:
    """Residual risk of an attack given its control; NaN when the control always wins."""
    a = success_rate(attacks=attacks, successes=successes, confidence=confidence)
    c = success_rate(attacks=control_attacks, successes=control_successes, confidence=confidence)
    if c.value >= 1.0:  # nothing left to measure: fail closed upstream
        nan = float("nan")
        return Risk(nan, nan, nan, a.value, c.value, attacks)
    value = (a.value - c.value) / (1.0 - c.value)
    d_attack = 1.0 / (1.0 - c.value)
    d_control = (a.value - 1.0) / (1.0 - c.value) ** 2
    error = math.sqrt((a.error * d_attack) ** 2 + (c.error * d_control) ** 2)
    return Risk(
        value=_clip(value),
        low=_clip(value - error),
        high=_clip(value + error),
        attack_rate=a.value,
        control_rate=c.value,
        attacks=attacks,
    )


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)
