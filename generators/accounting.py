"""Privacy accounting in zero-concentrated DP (zCDP) and its (epsilon, delta) reading.

Pure functions, no data: the conversion of Canonne, Kamath and Steinke, "The Discrete
Gaussian for Differential Privacy" (NeurIPS 2020, Prop. 12 / Cor. 13), as in
Private-PGM's ``cdp2adp.py``, plus :class:`PrivacyReport`, the record of what a fit
spent. All privacy parameters are keyword-only.

- ``cdp_delta(rho=, epsilon=)``: the delta at which rho-zCDP implies (epsilon, delta)-DP;
- ``cdp_eps(rho=, delta=)``: the smallest epsilon for that delta;
- ``cdp_rho(epsilon=, delta=)``: the largest rho whose guarantee stays within
  (epsilon, delta); it is checked so that ``cdp_eps(rho=cdp_rho(...), delta=delta)`` never
  exceeds ``epsilon``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNTANT = "zCDP (Canonne-Kamath-Steinke conversion)"
_MAX_BISECTIONS = 1000  # stops earlier, once the interval cannot shrink in floating point


def _check(name: str, value: float, *, low: float = 0.0, strict: bool = False) -> float:
    value = float(value)
    bad = not math.isfinite(value) or (value <= low if strict else value < low)
    if bad:
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {low}")
    return value


def cdp_delta(*, rho: float, epsilon: float) -> float:
    """delta such that rho-zCDP implies (epsilon, delta)-DP (CKS 2020, Cor. 13).

    Any order alpha > 1 gives a valid bound; a bisection on the derivative finds the best.
    """
    rho = _check("rho", rho)
    epsilon = _check("epsilon", epsilon)
    if rho == 0:
        return 0.0
    amin, amax = 1.01, (epsilon + 1) / (2 * rho) + 2  # the optimum is >= (1+eps/rho)/2
    alpha = (amin + amax) / 2
    for _ in range(_MAX_BISECTIONS):
        alpha = (amin + amax) / 2
        if not amin < alpha < amax:
            break
        derivative = (2 * alpha - 1) * rho - epsilon + math.log1p(-1.0 / alpha)
        if derivative < 0:
            amin = alpha
        else:
            amax = alpha
    exponent = (alpha - 1) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha)
    if exponent > 700:  # exp would overflow: delta is capped at 1 anyway
        return 1.0
    return min(math.exp(exponent) / (alpha - 1.0), 1.0)


def cdp_eps(*, rho: float, delta: float) -> float:
    """The smallest epsilon such that rho-zCDP implies (epsilon, delta)-DP."""
    rho = _check("rho", rho)
    delta = _check("delta", delta, strict=True)
    if delta >= 1 or rho == 0:
        return 0.0
    epsmin, epsmax = 0.0, rho + 2 * math.sqrt(rho * math.log(1 / delta))  # standard bound
    for _ in range(_MAX_BISECTIONS):
        eps = (epsmin + epsmax) / 2
        if not epsmin < eps < epsmax:
            break
        if cdp_delta(rho=rho, epsilon=eps) <= delta:
            epsmax = eps
        else:
            epsmin = eps
    return epsmax


def cdp_rho(*, epsilon: float, delta: float) -> float:
    """The largest rho such that rho-zCDP implies (epsilon, delta)-DP."""
    epsilon = _check("epsilon", epsilon)
    delta = _check("delta", delta, strict=True)
    if delta >= 1:
        raise ValueError("delta must be < 1")
    rhomin, rhomax = 0.0, epsilon + 1
    for _ in range(_MAX_BISECTIONS):
        rho = (rhomin + rhomax) / 2
        if not rhomin < rho < rhomax:
            break
        if cdp_delta(rho=rho, epsilon=epsilon) <= delta:
            rhomin = rho
        else:
            rhomax = rho
    # Make the round trip safe against the last ulp of either bisection.
    while rhomin > 0 and cdp_eps(rho=rhomin, delta=delta) > epsilon:
        rhomin *= 1 - 1e-12
    return rhomin


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class BudgetLine:
    """One mechanism step and the zCDP budget (rho) it spent."""

    step: str
    rho: float
    mechanism: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "rho": self.rho, "mechanism": self.mechanism}


@dataclass(frozen=True)
class PrivacyReport:
    """What a fit spent, end to end: JSON-serialisable via :meth:`to_dict`.

    ``rho`` is the sum of the lines (composition in zCDP is additive); ``epsilon`` is
    ``cdp_eps(rho=rho, delta=delta)``.
    """

    epsilon: float
    delta: float
    rho: float
    lines: tuple[BudgetLine, ...] = field(default_factory=tuple)
    accountant: str = ACCOUNTANT
    # public settings needed to recompute or audit the spend (e.g. AIM's workload and
    # round plan); JSON-serialisable, never a statistic of the rows
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = math.fsum(line.rho for line in self.lines)
        if not math.isclose(total, self.rho, rel_tol=1e-9, abs_tol=1e-15):
            raise ValueError("privacy report lines do not sum to its rho")

    @classmethod
    def from_lines(
        cls, lines: Iterable[BudgetLine], *, delta: float, settings: Mapping[str, Any] | None = None
    ) -> PrivacyReport:
        lines = tuple(lines)
        rho = math.fsum(line.rho for line in lines)
        return cls(
            epsilon=cdp_eps(rho=rho, delta=delta),
            delta=delta,
            rho=rho,
            lines=lines,
            settings=dict(settings or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "accountant": self.accountant,
            "rho": self.rho,
            "lines": [line.to_dict() for line in self.lines],
            **({"settings": dict(self.settings)} if self.settings else {}),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PrivacyReport:
        return cls(
            epsilon=float(raw["epsilon"]),
            delta=float(raw["delta"]),
            rho=float(raw["rho"]),
            lines=tuple(
                BudgetLine(str(x["step"]), float(x["rho"]), str(x.get("mechanism", "")))
                for x in raw["lines"]
            ),
            accountant=str(raw["accountant"]),
            settings=dict(raw.get("settings") or {}),
        )
