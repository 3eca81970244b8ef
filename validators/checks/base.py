"""What a check declares: its figures, the thresholds the gate applies, and its compute.

A :class:`CheckDef` is one unit of work of the real-data evaluation
(``validators/real.py`` runs each through the fail-closed ``evaluation.Collector``); its
:class:`Threshold` entries are what the release gate checks, and each becomes a field of
the spec's ``gate:`` section (``synthrelease/spec/sections.py``). Everything else (the
evaluation's ``CHECKS``, the gate's tables, the docs table) is derived from the registry
in ``validators/checks/__init__.py``.

The spec's ``Gate`` model sits in the base layer and cannot import this engine-layer
registry, so its threshold fields are written there by hand; ``tests/test_check_registry.py``
fails (naming the field to add) unless every :class:`Threshold` has its field with the
declared default, and every threshold field has its declaration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthrelease.validators.samples import Samples

Result = tuple[dict[str, float], dict[str, Any]]
Compute = Callable[[Samples, np.random.Generator], Result]

_FIGURE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Threshold:
    """One gated figure: passes at or below (``max``) / at or above (``min``) ``default``
    unless the spec's ``gate:`` section sets ``<bound>_<figure>`` (:attr:`field`).

    ``description`` is the public one (gate, datasheet, Prefect summary); ``notes`` add
    detail for docs/validation.md only. ``kind``: utility checks come first in a verdict.
    """

    figure: str
    bound: Literal["max", "min"]
    default: float
    kind: Literal["utility", "privacy"]
    description: str
    notes: str = ""

    def __post_init__(self) -> None:
        if not _FIGURE.match(self.figure):
            raise ValueError("a figure name is lower-case letters, digits and '_'")
        if self.bound not in ("max", "min") or self.kind not in ("utility", "privacy"):
            raise ValueError(f"{self.figure}: bound is 'max' or 'min', kind 'utility' or 'privacy'")

    @property
    def field(self) -> str:
        """The spec's ``gate:`` key holding the threshold, e.g. ``max_tvd_1way``."""
        return f"{self.bound}_{self.figure}"


@dataclass(frozen=True)
class CheckDef:
    """One check: ``compute(samples, rng)`` returns ``(figures, details)`` with at least
    every name of ``figures``; ``gates`` are the figures the release gate checks.
    ``needs_target``: runs (and is gated) only when the spec declares a target.
    ``uses``: the implementation modules under ``validators/`` (for the docs table)."""

    name: str
    figures: tuple[str, ...]
    compute: Compute
    gates: tuple[Threshold, ...] = ()
    needs_target: bool = False
    uses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _FIGURE.match(self.name):
            raise ValueError("a check name is lower-case letters, digits and '_'")
        if len(set(self.figures)) != len(self.figures) or not self.figures:
            raise ValueError(f"{self.name}: figures must be given, without repeats")
        for figure in self.figures:
            if not _FIGURE.match(figure):
                raise ValueError(f"{self.name}: bad figure name {figure!r}")
        missing = [t.figure for t in self.gates if t.figure not in self.figures]
        if missing:
            raise ValueError(f"{self.name}: gates figures it does not produce: {missing}")


@dataclass(frozen=True)
class SuiteCheck:
    """A pass/fail gate check with an on/off spec field rather than a threshold (the
    Great Expectations suite on the synthetic table, run by the pipeline's check step)."""

    name: str
    default: bool
    description: str
    uses: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return self.name
