"""What a plan says: its budget lines with noise scales, its forecasts, and the plan
itself with its text forms (``render``, ``summary_line``). Built by
:func:`synthrelease.planning.plan.make_plan`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PLAN_FORMAT = 1
Outlook = Literal["likely", "borderline", "unlikely", "not predicted"]


@dataclass(frozen=True)
class Noise:
    """One budget line with, for a Gaussian measurement, its noise per cell."""

    step: str
    rho: float
    mechanism: str
    sigma: float | None  # per cell, in rows
    relative: float | None  # sigma / rows


@dataclass(frozen=True)
class Forecast:
    """One utility check of the gate: threshold, predicted figure, outlook and remedy."""

    name: str
    bound: str
    threshold: float
    predicted: float | None
    outlook: Outlook
    remedy: str = ""


@dataclass(frozen=True)
class Plan:
    name: str
    generator: str
    epsilon: float
    delta: float
    rows: int
    rows_provenance: str
    train_rows: int
    holdout_rows: int
    holdout_assumed: bool
    synthetic_rows: int
    noise: tuple[Noise, ...]
    predicted: dict[str, float]
    floor: dict[str, float]
    truth: dict[str, float]
    forecasts: tuple[Forecast, ...]
    simulated_rows: int
    simulated_epsilon: float
    fit_seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    shapes: str = "prior"  # the stand-in's 1-way shapes: "prior", or "dp" (plan --measure)

    # ------------------------------------------------------------------ verdicts
    @property
    def gate_can_pass(self) -> bool:
        """False when a predicted utility check is far past its threshold."""
        return not any(f.outlook == "unlikely" for f in self.forecasts)

    @property
    def likely(self) -> dict[str, bool | None]:
        """Per check: True (likely), False (borderline or unlikely), None (not predicted)."""
        return {
            f.name: None if f.outlook == "not predicted" else f.outlook == "likely"
            for f in self.forecasts
        }

    def summary_line(self) -> str:
        two = self.predicted.get("tvd_2way")
        gate = {f.name: f for f in self.forecasts}.get("tvd_2way")
        parts = [
            f"plan: {self.generator} at epsilon {self.epsilon:g} on about {self.rows:,} rows "
            f"({self.rows_provenance})"
        ]
        if two is not None and gate is not None:
            shapes = ", on its 1-way shapes measured under DP" if self.shapes == "dp" else ""
            parts.append(f"predicted 2-way TVD {two:.3f}{shapes} (gate {gate.threshold:g})")
        if self.gate_can_pass:
            doubtful = [f.name for f in self.forecasts if f.outlook == "borderline"]
            parts.append(
                "gate likely to pass"
                if not doubtful
                else f"gate may pass (borderline: {', '.join(doubtful)})"
            )
        else:
            failing = [f.name for f in self.forecasts if f.outlook == "unlikely"]
            parts.append(f"gate CANNOT be expected to pass ({', '.join(failing)})")
        return "; ".join(parts)

    def render(self) -> str:
        """The plan as text (what ``synthrelease plan`` prints)."""
        out = [
            f"Plan for '{self.name}': {self.generator}, epsilon {self.epsilon:g}, "
            f"delta {self.delta:g}",
            f"  rows: about {self.rows:,} ({self.rows_provenance}); training part "
            f"{self.train_rows:,}, holdout {self.holdout_rows:,}"
            + (
                " (assumed: the holdout source's size is not declared)"
                if self.holdout_assumed
                else ""
            )
            + f"; synthetic {self.synthetic_rows:,}",
            "",
            "Budget lines (zCDP rho; noise per cell in rows, and relative to the row count):",
        ]
        for line in _grouped(self.noise):
            out.append("  " + line)
        out += [
            "",
            "Expected error (mean total-variation distance; what the gate measures is "
            "synthetic vs holdout):",
            "            vs holdout   sampling floor   vs truth",
        ]
        for way in ("tvd_1way", "tvd_2way", "tvd_3way"):
            out.append(
                f"  {way:<9} {self.predicted.get(way, math.nan):>10.4f}"
                f"   {self.floor.get(way, math.nan):>14.4f}   {self.truth.get(way, math.nan):>8.4f}"
            )
        out += ["", "Utility checks of the gate:"]
        for f in self.forecasts:
            figure = "-" if f.predicted is None else f"{f.predicted:.4f}"
            sign = "<=" if f.bound == "max" else ">="
            line = (
                f"  {f.name:<17} predicted {figure:>7}  gate {sign} {f.threshold:<7g} {f.outlook}"
            )
            out.append(line + (f": {f.remedy}" if f.remedy else ""))
        out += ["", self.summary_line()]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, **asdict(self), "gate_can_pass": self.gate_can_pass}


def _grouped(noise: tuple[Noise, ...]) -> list[str]:
    """Budget lines, AIM's rounds folded into one line per kind."""
    rounds = [n for n in noise if n.step.startswith("round ")]
    others = [n for n in noise if not n.step.startswith("round ")]
    lines = [_noise_line(n.step, n) for n in others]
    measures = [n for n in rounds if n.sigma is not None]
    selects = [n for n in rounds if n.sigma is None]
    if measures:
        sigmas = [n.sigma for n in measures if n.sigma is not None]
        rel = [n.relative for n in measures if n.relative is not None]
        rho = math.fsum(n.rho for n in measures)
        lines.append(
            f"{len(measures)} rounds: measure   rho {rho:.5f}  Gaussian, sigma "
            f"{min(sigmas):.1f}..{max(sigmas):.1f} ({min(rel):.3%}..{max(rel):.3%} of the rows)"
        )
    if selects:
        rho = math.fsum(n.rho for n in selects)
        lines.append(f"{len(selects)} rounds: select    rho {rho:.5f}  exponential mechanism")
    total = math.fsum(n.rho for n in noise)
    lines.append(f"total rho {total:.5f}")
    return lines


def _noise_line(step: str, n: Noise) -> str:
    text = f"{step:<22} rho {n.rho:.5f}  {n.mechanism}"
    if n.sigma is not None and n.relative is not None:
        text += f", sigma {n.sigma:.1f} ({n.relative:.3%} of the rows)"
    return text
