"""Small hand-made inline SVG charts for the internal report (no scripts, no links).

Grouped bars for a column's distribution (real vs synthetic), a heatmap for an
association matrix, a grid for the joint shares of a pair of columns, horizontal bars
for a figure per column, and the sample-equivalence curve. Every label is escaped; numbers are formatted, never raw input.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

REAL = "#4c78a8"
SYNTHETIC = "#f58518"
MAX_BARS = 40


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def bars(
    *, title: str, labels: Sequence[str], real: Sequence[float], synthetic: Sequence[float]
) -> str:
    """Grouped bars of two distributions over the same labels (shares in [0, 1]).

    Above :data:`MAX_BARS` labels, the labels with the largest shares are shown and the
    title says how many were left out.
    """
    if not (len(labels) == len(real) == len(synthetic)):
        raise ValueError("labels, real and synthetic must have the same length")
    order = list(range(len(labels)))
    hidden = 0
    if len(order) > MAX_BARS:
        order = sorted(order, key=lambda i: -max(real[i], synthetic[i]))[:MAX_BARS]
        order.sort()
        hidden = len(labels) - MAX_BARS
    width, height, left, bottom, top = 680, 240, 80, 80, 24
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([real[i] for i in order] + [synthetic[i] for i in order] + [1e-9])
    slot = plot_w / max(1, len(order))
    bar = max(1.0, slot * 0.4)
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{_e(title)}'
        + (f" ({hidden} smaller bins not shown)" if hidden else "")
        + "</text>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{peak:.0%}</text>',
    ]
    for k, i in enumerate(order):
        x = left + k * slot + slot * 0.1
        for j, (share, colour) in enumerate(((real[i], REAL), (synthetic[i], SYNTHETIC))):
            h = plot_h * share / peak
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(labels[i])}: '
                f"{'real' if j == 0 else 'synthetic'} {share:.3%}</title></rect>"
            )
        lx, ly = x + bar, top + plot_h + 8
        parts.append(
            f'<text x="{lx:.1f}" y="{ly}" font-size="9" text-anchor="end" '
            f'transform="rotate(-60 {lx:.1f} {ly})">{_e(_short(labels[i]))}</text>'
        )
    parts.append(_legend(width - 170, 12))
    parts.append("</svg>")
    return "".join(parts)


def heatmap(*, title: str, columns: Sequence[str], matrix: Sequence[Sequence[float]]) -> str:
    """A square heatmap of values in [0, 1] (e.g. Cramér's V), one cell per pair."""
    n = len(columns)
    if any(len(row) != n for row in matrix) or len(matrix) != n:
        raise ValueError("matrix must be square with one row per column")
    cell = max(8, min(28, 420 // max(1, n)))
    left, top = 130, 30
    size = left + cell * n + 10
    parts = [
        f'<svg role="img" width="{size}" '
        f'height="{top + cell * n + 10}" viewBox="0 0 {size} {top + cell * n + 10}">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for i, name in enumerate(columns):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 4}" y="{y + cell * 0.7:.1f}" font-size="10" '
            f'text-anchor="end">{_e(_short(name))}</text>'
        )
        for j in range(n):
            value = min(1.0, max(0.0, float(matrix[i][j])))
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{_blue(value)}"><title>{_e(columns[i])} / {_e(columns[j])}: '
                f"{value:.3f}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def grid(
    *,
    title: str,
    rows: Sequence[str],
    cols: Sequence[str],
    matrix: Sequence[Sequence[float]],
    peak: float,
) -> str:
    """A rectangular heat map of shares (one cell per pair of labels), shaded against
    ``peak`` so that two maps drawn with the same peak compare cell by cell."""
    if len(matrix) != len(rows) or any(len(r) != len(cols) for r in matrix):
        raise ValueError("matrix must have one row per row label and one value per column")
    cell = max(10, min(22, 260 // max(1, len(rows), len(cols))))
    left, top = 110, 96
    width, height = left + cell * len(cols) + 10, top + cell * len(rows) + 10
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for j, name in enumerate(cols):
        x, y = left + j * cell + cell * 0.7, top - 4
        parts.append(
            f'<text x="{x:.1f}" y="{y}" font-size="9" transform="rotate(-60 {x:.1f} {y})">'
            f"{_e(_short(name, 14))}</text>"
        )
    scale = max(float(peak), 1e-9)
    for i, name in enumerate(rows):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 4}" y="{y + cell * 0.7:.1f}" font-size="9" '
            f'text-anchor="end">{_e(_short(name, 16))}</text>'
        )
        for j, share in enumerate(matrix[i]):
            value = min(1.0, max(0.0, float(share) / scale))
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{_blue(value)}" stroke="#fff" stroke-width="0.5"><title>'
                f"{_e(name)} / {_e(cols[j])}: {float(share):.3%}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def hbars(*, title: str, labels: Sequence[str], values: Sequence[float], unit: str = "") -> str:
    """Horizontal bars of values in [0, 1] (e.g. a TVD per column), longest scale 1 or
    the largest value if above it; labels escaped, values formatted."""
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    left, bar, width = 150, 16, 680
    plot_w = width - left - 70
    height = 28 + bar * len(labels) + 6
    peak = max([1e-9, *(float(v) for v in values)])
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 26 + i * bar
        w = plot_w * float(value) / peak
        parts.append(
            f'<text x="{left - 6}" y="{y + bar * 0.7:.1f}" font-size="10" text-anchor="end">'
            f"{_e(_short(label, 22))}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar - 4}" fill="{SYNTHETIC}">'
            f"<title>{_e(label)}: {float(value):.4f}{_e(unit)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + bar * 0.7:.1f}" font-size="10">'
            f"{float(value):.3f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def curve(
    *,
    title: str,
    fractions: Sequence[float],
    values: Sequence[float],
    level: float,
    match: float | None,
) -> str:
    """The mean TVD of random real samples against their size (log scale), the
    synthetic table's TVD as a horizontal line and, if any, the matched fraction."""
    if len(fractions) != len(values) or not fractions:
        raise ValueError("fractions and values must be non-empty and of the same length")
    width, height, left, bottom, top = 680, 240, 60, 40, 24
    plot_w, plot_h = width - left - 20, height - bottom - top
    lo, hi = math.log10(min(fractions)), math.log10(max(fractions))
    span = max(hi - lo, 1e-9)
    peak = max([*(float(v) for v in values), float(level), 1e-9]) * 1.05

    def px(f: float) -> float:
        return left + plot_w * (math.log10(f) - lo) / span

    def py(v: float) -> float:
        return top + plot_h * (1 - float(v) / peak)

    points = " ".join(f"{px(f):.1f},{py(v):.1f}" for f, v in zip(fractions, values))
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{peak:.3f}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
        f'<polyline points="{points}" fill="none" stroke="{REAL}" stroke-width="2"/>',
        f'<line x1="{left}" y1="{py(level):.1f}" x2="{left + plot_w}" y2="{py(level):.1f}" '
        f'stroke="{SYNTHETIC}" stroke-dasharray="5,3" stroke-width="2"/>',
        f'<text x="{left + plot_w}" y="{py(level) - 4:.1f}" font-size="11" text-anchor="end" '
        f'fill="{SYNTHETIC}">synthetic {float(level):.4f}</text>',
    ]
    for f, v in zip(fractions, values):
        parts.append(
            f'<circle cx="{px(f):.1f}" cy="{py(v):.1f}" r="3" fill="{REAL}">'
            f"<title>{f:.3%} of the training rows: {float(v):.4f}</title></circle>"
            f'<text x="{px(f):.1f}" y="{top + plot_h + 14}" font-size="9" '
            f'text-anchor="middle">{f:.2%}</text>'
        )
    if match is not None:
        parts.append(
            f'<line x1="{px(match):.1f}" y1="{top}" x2="{px(match):.1f}" y2="{top + plot_h}" '
            f'stroke="#555" stroke-dasharray="2,2"/>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" font-size="10" '
        'text-anchor="middle">random sample of the real training rows (share, log scale)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _legend(x: int, y: int) -> str:
    return (
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{REAL}"/>'
        f'<text x="{x + 14}" y="{y}" font-size="11">real (holdout)</text>'
        f'<rect x="{x + 95}" y="{y - 9}" width="10" height="10" fill="{SYNTHETIC}"/>'
        f'<text x="{x + 109}" y="{y}" font-size="11">synthetic</text>'
    )


def _blue(value: float) -> str:
    shade = int(round(255 - 200 * value))
    return f"rgb({shade},{min(255, shade + int(30 * (1 - value)))},255)"


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
