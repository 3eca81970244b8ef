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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.evaluation")  # failed real-data checks

Result = tuple[dict[str, float], dict[str, Any]]

# The checks of ``real.evaluate_against_real``, in order; each is one unit of work that a
# flow may run on its own (``only=``), e.g. in parallel on a Dask cluster.
CHECKS = ("marginals_and_copies", "marginals_3way", "plots", "sdmetrics", "tstr", "distance",
          "membership", "singling_out", "linkability", "inference")


@dataclass(frozen=True)
class Settings:
    """How much of each table the checks use (seeded subsamples above these sizes).

    ``sample_rows``: rows per table for SDMetrics, TSTR, the plots and the real
    references of the distance-based checks; ``attack_rows``: synthetic rows compared by
    DCR/NNDR, and members / non-members / targets per attack; ``marginal_rows``: rows per
    table for the marginal TVDs and exact copies (cheap, linear work: a larger sample
    keeps sampling noise out of the TVD, which a 10,000-row sample inflates by ~0.007 at
    2-way on Adult); ``max_marginals``: marginals per k-way TVD (drawn at random above
    it); ``singling_out_queries``: predicates the singling-out attacker writes.
    """

    sample_rows: int = 10_000
    attack_rows: int = 2_000
    marginal_rows: int = 50_000
    max_marginals: int = 500
    singling_out_queries: int = 500

    def __post_init__(self) -> None:
        for name in ("sample_rows", "attack_rows", "marginal_rows", "max_marginals",
                     "singling_out_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")

    @classmethod
    def from_gate(cls, gate: Any) -> "Settings":
        sample_rows = int(getattr(gate, "sample_rows", cls.sample_rows))
        return cls(
            sample_rows=sample_rows,
            attack_rows=int(getattr(gate, "attack_rows", cls.attack_rows)),
            marginal_rows=max(sample_rows, cls.marginal_rows),
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "sample_rows": self.sample_rows,
            "attack_rows": self.attack_rows,
            "marginal_rows": self.marginal_rows,
            "max_marginals": self.max_marginals,
            "singling_out_queries": self.singling_out_queries,
        }


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
        except Exception as exc:  # noqa: BLE001 - any failure fails the check, closed
            self.evaluation.errors[name] = type(exc).__name__
            for key in owns:
                self.evaluation.figures[key] = float("nan")
            private_logger.warning("check %s failed (%s); its figures are NaN", name,
                                   type(exc).__name__)
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
