"""A Prefect-artifact-ready markdown summary of the gate's public verdict.

Only names, bounds, thresholds, pass/fail and reasons appear, rebuilt from a whitelist
of keys: a ``figure`` (or any other key) in the input is ignored, so an internal verdict
passed by mistake still yields a summary free of real-data values. The library does not
import Prefect; the flow hands this string to ``create_markdown_artifact``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from synthrelease.validators.gate import DESCRIPTIONS

_REASONS = frozenset(
    {
        "at or below the threshold",
        "above the threshold",
        "at or above the threshold",
        "below the threshold",
        "figure is missing",
        "figure is None",
        "figure is not a number",
        "figure is NaN",
        "figure is infinite",
        "no figures were given",
        "all expectations passed",
        "expectations were not run",
        "not an expectations result",
        "unknown kind of threshold",
    }
)


def verdict_markdown(public_verdict: Mapping[str, Any]) -> str:
    """Markdown: the overall verdict and one table row per check."""
    if not isinstance(public_verdict, Mapping):
        return "# Release gate: FAILED\n\nNo verdict was produced.\n"
    passed = public_verdict.get("passed") is True
    checks = [c for c in public_verdict.get("checks", []) if isinstance(c, Mapping)]
    failed = sum(1 for c in checks if c.get("passed") is not True)
    lines = [
        f"# Release gate: {'PASSED' if passed else 'FAILED'}",
        "",
        f"{len(checks) - failed} of {len(checks)} checks passed. Figures computed on the "
        "real data are not shown here; they are in the internal report.",
        "",
        "| check | bound | threshold | result | reason |",
        "|---|---|---|---|---|",
    ]
    for check in checks:
        lines.append(
            f"| {_cell(check.get('name'))} | {_bound(check.get('bound'))} | "
            f"{_threshold(check.get('threshold'))} | "
            f"{'pass' if check.get('passed') is True else '**FAIL**'} | "
            f"{_reason(check.get('reason'))} |"
        )
    lines += ["", "| check | what it measures |", "|---|---|"]
    lines += [
        f"| {_cell(c.get('name'))} | {_cell(DESCRIPTIONS.get(str(c.get('name')), ''))} |"
        for c in checks
    ]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _bound(value: Any) -> str:
    return {"max": "at most", "min": "at least"}.get(str(value), "")


def _threshold(value: Any) -> str:
    """A threshold comes from the public spec; anything else prints as a dash."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "—"
    value = float(value)
    return f"{value:g}" if math.isfinite(value) else "—"


def _reason(value: Any) -> str:
    """Known reasons verbatim; expectation failures keep only their expectation names."""
    text = str(value) if value is not None else ""
    if text in _REASONS:
        return text
    if text.startswith("expectations failed") or text.startswith("the suite raised"):
        return _cell(text)
    return "see the internal report"
