"""Small hand-made inline SVG charts for the internal report (no scripts, no links).

Grouped bars for a column's distribution (real vs synthetic) and a heatmap for an
association matrix. Every label is escaped; numbers are formatted, never raw input.
"""

from __future__ import annotations

import html
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


def _legend(x: int, y: int) -> str:
    return (
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{REAL}"/>'
        f'<text x="{x + 14}" y="{y}" font-size="11">real (holdout)</text>'
        f'<rect x="{x + 95}" y="{y - 9}" width="10" height="10" fill="{SYNTHETIC}"/>'
        f'<text x="{x + 109}" y="{y}" font-size="11">synthetic</text>'
    )


def _blue(value: float) -> str:
    shade = int(round(255 - 200 * value))
    return f"rgb({shade},{shade + int(30 * (1 - value))},255)"


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
