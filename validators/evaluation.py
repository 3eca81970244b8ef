"""The plumbing of the real-data evaluation: sample sizes, results, fail-closed guards.

Nothing here reads rows. ``validators/real.py`` (the trusted reader) runs each check
through :meth:`Collector.run`: a check that raises gets NaN for every figure it owns
(so the gate fails them) and its exception *type* is recorded; the message is dropped,
because library messages can quote data values. Warnings raised inside a check are
silenced for the same reason.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from synthrelease.validators.checks import REGISTRY
from synthrelease.validators.checks.base import Result
from synthrelease.validators.samples import Settings  # noqa: F401 - re-exported (the pipeline)

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.evaluation")  # failed real-data checks

# The checks of ``real.evaluate_against_real``, in registry order (``validators/checks/``);
# each is one unit of work that a flow may run on its own (``only=``), e.g. in parallel on
# a Dask cluster.
CHECKS: tuple[str, ...] = tuple(check.name for check in REGISTRY)


@dataclass
class Evaluation:
    """Figures (flat, NaN where a check failed), details for the report, error types."""

    figures: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": dict(self.figures),
            "details": self.details,
            "errors": dict(self.errors),
            "seconds": dict(self.seconds),
        }


class Collector:
    """Runs checks one by one into an :class:`Evaluation`, failing closed."""

    def __init__(self) -> None:
        self.evaluation = Evaluation()

    def run(self, name: str, check: Callable[[], Result], owns: Iterable[str]) -> bool:
        """Run ``check``; on any exception set its figures ``owns`` to NaN. True if it ran."""
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figures, details = check()
            clean = {str(k): _number(v) for k, v in figures.items()}
        except Exception as exc:
            self.evaluation.errors[name] = type(exc).__name__
            for key in owns:
                self.evaluation.figures[key] = float("nan")
            private_logger.warning(
                "check %s failed (%s); its figures are NaN", name, type(exc).__name__
            )
            return False
        finally:
            self.evaluation.seconds[name] = round(time.perf_counter() - started, 3)
        missing = [k for k in owns if k not in clean]
        for key in missing:  # a check that forgot a figure fails it too
            clean[key] = float("nan")
        if missing:
            self.evaluation.errors[name] = "MissingFigure"
        self.evaluation.figures.update(clean)
        if details:
            self.evaluation.details[name] = details
        return True


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if not math.isinf(number) else float("nan")
