"""The registry of validation checks: one module per check, listed here in order.

Each module declares one :class:`~synthrelease.validators.checks.base.CheckDef` (name,
figures, gated figures with bound, default, bounds of the spec field and description,
and its compute function). Everything else is derived from :data:`REGISTRY`:

- ``validators.evaluation.CHECKS``: the units of work of ``evaluate_against_real`` (and
  of the parallel check parts), in this order; each draws from its own child generator,
  spawned in this order, so the order is part of every seeded figure;
- ``validators.gate``: ``THRESHOLD_CHECKS``, ``TARGET_CHECKS``, ``DESCRIPTIONS``;
- the spec's ``gate:`` fields (``synthrelease/spec/sections.py``);
- the table in docs/validation.md (``validators.checks.docs``).

Adding a check: one module declaring ``CHECK``, one line below. Plain tuples, no
import-time registration.
"""

from __future__ import annotations

from synthrelease.validators.checks import (
    distance,
    expectations,
    inference,
    linkability,
    marginals,
    marginals_3way,
    membership,
    plots,
    privacy_audit,
    sample_equivalence,
    sdmetrics,
    singling_out,
    tstr,
)
from synthrelease.validators.checks.base import CheckDef, SuiteCheck, Threshold

REGISTRY: tuple[CheckDef, ...] = (
    marginals.CHECK,
    marginals_3way.CHECK,
    plots.CHECK,
    sdmetrics.CHECK,
    tstr.CHECK,
    distance.CHECK,
    membership.CHECK,
    singling_out.CHECK,
    linkability.CHECK,
    inference.CHECK,
    # Last, so that adding it spawned no new generator for the checks above.
    sample_equivalence.CHECK,
)
# Checked by the gate without a threshold; computed by the pipeline on the synthetic table.
SUITES: tuple[SuiteCheck, ...] = (expectations.CHECK, privacy_audit.CHECK)


def thresholds(registry: tuple[CheckDef, ...] = REGISTRY) -> tuple[Threshold, ...]:
    """Every gated figure, in verdict order: utility first, then privacy, each in
    registry order."""
    every = [t for check in registry for t in check.gates]
    return tuple(t for kind in ("utility", "privacy") for t in every if t.kind == kind)


def owner(figure: str, registry: tuple[CheckDef, ...] = REGISTRY) -> CheckDef:
    """The check that produces ``figure``."""
    for check in registry:
        if figure in check.figures:
            return check
    raise KeyError(figure)


__all__ = ["REGISTRY", "SUITES", "CheckDef", "SuiteCheck", "Threshold", "owner", "thresholds"]
