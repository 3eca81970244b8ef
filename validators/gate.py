"""The release gate: thresholds from the spec against the validation figures. Fails closed.

A check passes only on positive evidence: a finite real number at or below its
threshold (at or above it for a "min" check), or an expectations result whose
``success`` is exactly ``True``. A missing
figure, ``None``, NaN, infinity, a bool or any other non-number fails its check and so
the verdict. Reasons never quote figures, so :meth:`Verdict.public_dict` can leave the
workspace; the figures themselves (computed against real data, not DP) cannot.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthrelease.spec import Gate
from synthrelease.validators.checks import REGISTRY, SUITES, thresholds
from synthrelease.validators.checks.expectations import CHECK as EXPECTATIONS
from synthrelease.validators.checks.privacy_audit import CHECK as AUDIT
from synthrelease.validators.expectations import ExpectationResult

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.gate")  # names of failed checks

# Derived from the registry (validators/checks/), one declaration per check:
# (check name = figure key, Gate attribute holding its threshold, bound): a "max" check
# passes at or below its threshold, a "min" check at or above it. Utility first.
THRESHOLD_CHECKS: tuple[tuple[str, str, str], ...] = tuple(
    (t.figure, t.field, t.bound) for t in thresholds()
)
TARGET_CHECKS = frozenset(  # only when the spec declares a target
    t.figure for check in REGISTRY if check.needs_target for t in check.gates
)
EXPECTATIONS_CHECK = EXPECTATIONS.name
DESCRIPTIONS: dict[str, str] = {
    **{t.figure: t.description for t in thresholds()},
    **{suite.name: suite.description for suite in SUITES},
}


@dataclass(frozen=True)
class Check:
    name: str
    figure: float | None  # the observed value when it was a real number (internal only)
    threshold: float | None
    passed: bool
    reason: str  # never quotes the figure
    bound: str | None = None  # "max" or "min" for threshold checks

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "figure": _json_number(self.figure),
            "threshold": self.threshold,
            "bound": self.bound,
            "passed": self.passed,
            "reason": self.reason,
        }

    def public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "bound": self.bound,
            "passed": self.passed,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[Check, ...]

    def __post_init__(self) -> None:
        if self.passed and not (self.checks and all(c.passed is True for c in self.checks)):
            raise ValueError("a verdict cannot pass with no checks or a failed check")

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """Everything, figures included: for the internal report only."""
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}

    def public_dict(self) -> dict[str, Any]:
        """Names, thresholds, pass/fail and reasons; no figures. Safe for a release."""
        return {"passed": self.passed, "checks": [c.public_dict() for c in self.checks]}


def evaluate_gate(
    *,
    figures: Mapping[str, float | None],
    expectations: ExpectationResult | None,
    gate: Gate,
    target: str | None = None,
    audit: Mapping[str, Any] | None = None,
    epsilon: float | None = None,
) -> Verdict:
    """Compare ``figures`` (and the GX result) with the spec's ``gate`` thresholds.

    Every check of :data:`THRESHOLD_CHECKS` applies, except the TSTR check without a
    ``target``; the expectations check applies when ``gate.expectations`` is true; the
    privacy audit's (``audit``: its figures, public) when ``gate.privacy_audit`` is true,
    passing only when its epsilon lower bound is at or below the release's ``epsilon``.
    """
    checks = [
        _threshold_check(name, figures, float(getattr(gate, attr)), bound)
        for name, attr, bound in THRESHOLD_CHECKS
        if target is not None or name not in TARGET_CHECKS
    ]
    if gate.expectations:
        checks.append(_expectations_check(expectations))
    if gate.privacy_audit or _refuted(audit, epsilon):  # switched off, it still refutes
        checks.append(_audit_check(audit, epsilon))
    passed = bool(checks) and all(c.passed for c in checks)
    verdict = Verdict(passed=passed, checks=tuple(checks))
    logger.info("gate: %s", "passed" if passed else "FAILED")
    private_logger.info(
        "gate: %s (%d of %d checks failed: %s)",
        "passed" if passed else "FAILED",
        len(verdict.failed),
        len(checks),
        ", ".join(c.name for c in verdict.failed) or "none",
    )
    return verdict


def _threshold_check(
    name: str, figures: Mapping[str, Any], threshold: float, bound: str = "max"
) -> Check:
    def fail(figure: float | None, reason: str) -> Check:
        return Check(name, figure, threshold, False, reason, bound)

    if bound not in ("max", "min"):
        return fail(None, "unknown kind of threshold")
    if not isinstance(figures, Mapping):
        return fail(None, "no figures were given")
    if name not in figures:
        return fail(None, "figure is missing")
    value = figures[name]
    if value is None:
        return fail(None, "figure is None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return fail(None, "figure is not a number")
    figure = float(value)
    if math.isnan(figure):
        return fail(figure, "figure is NaN")
    if math.isinf(figure):
        return fail(figure, "figure is infinite")
    if bound == "max":
        if figure <= threshold:
            return Check(name, figure, threshold, True, "at or below the threshold", bound)
        return fail(figure, "above the threshold")
    if figure >= threshold:
        return Check(name, figure, threshold, True, "at or above the threshold", bound)
    return fail(figure, "below the threshold")


def _expectations_check(result: ExpectationResult | None) -> Check:
    if result is None:
        return Check(EXPECTATIONS_CHECK, None, None, False, "expectations were not run")
    if not isinstance(result, ExpectationResult):
        return Check(EXPECTATIONS_CHECK, None, None, False, "not an expectations result")
    if result.error is not None:
        return Check(EXPECTATIONS_CHECK, None, None, False, f"the suite raised {result.error}")
    if result.success is not True or not result.results:
        failed = sorted({o.expectation for o in result.failed})
        detail = f": {', '.join(failed)}" if failed else ""
        return Check(EXPECTATIONS_CHECK, None, None, False, f"expectations failed{detail}")
    return Check(EXPECTATIONS_CHECK, None, None, True, "all expectations passed")


def _refuted(audit: Mapping[str, Any] | None, epsilon: float | None) -> bool:
    """The audit ran and its bound is above ``epsilon``: the release's claim is refuted,
    whatever ``gate.privacy_audit`` says."""
    if not isinstance(audit, Mapping) or audit.get("error"):
        return False
    bound = audit.get("epsilon_lower_bound")
    return (
        isinstance(bound, numbers.Real)
        and not isinstance(bound, bool)
        and isinstance(epsilon, numbers.Real)
        and not float(bound) <= float(epsilon)
    )


def _audit_check(audit: Mapping[str, Any] | None, epsilon: float | None) -> Check:
    """Passes only on a finite bound at or below a finite, positive ``epsilon``."""
    name = AUDIT.name

    def fail(reason: str) -> Check:
        return Check(name, None, epsilon, False, reason, "max")

    if not isinstance(audit, Mapping) or audit.get("error"):
        return fail("the privacy audit did not run")
    bound = audit.get("epsilon_lower_bound")
    if (
        isinstance(bound, bool)
        or not isinstance(bound, numbers.Real)
        or not math.isfinite(bound)
        or bound < 0
    ):
        return fail("the privacy audit gave no lower bound")
    if not isinstance(epsilon, numbers.Real) or not (0 < float(epsilon) < math.inf):
        return fail("no claimed epsilon to compare with")
    if float(bound) > float(epsilon):
        return Check(
            name,
            float(bound),
            float(epsilon),
            False,
            "lower bound above the claimed epsilon",
            "max",
        )
    return Check(
        name,
        float(bound),
        float(epsilon),
        True,
        "lower bound at or below the claimed epsilon",
        "max",
    )


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value
