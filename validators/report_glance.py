"""The internal report's summary sections: utility at a glance (top of the report),
the per-column and per-pair marginal error, and the sample-equivalence sentence the
datasheet reuses; with the HTML helpers that ``report_sections`` shares.

Rendered from the evaluation's details (``validators/real.py``) into self-contained HTML
(inline SVG, no scripts, no external links). Internal only: these are real-data figures.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping
from typing import Any

from synthrelease.validators import svg


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "&mdash;" if value is None else _e(value)
    value = float(value)
    return _e(f"{value:.4g}") if math.isfinite(value) else "not finite"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


# ------------------------------------------------------------------ at a glance
def render_glance(*, figures: Mapping[str, Any], details: Mapping[str, Any], passed: bool) -> str:
    """The top of the report: the k-marginal score, the sample equivalence, TSTR next to
    TRTR with their intervals, and what the verdict means."""
    tstr = details.get("tstr") if isinstance(details.get("tstr"), Mapping) else {}
    equivalence = details.get("sample_equivalence")
    holdout = equivalence.get("holdout_rows") if isinstance(equivalence, Mapping) else None
    rows = [
        [
            "k-marginal score (SDNist scale: 1,000 x (1 - mean 3-way TVD); 1,000 is perfect)",
            _n(_rounded(figures.get("kmarginal_score"))),
        ],
        [
            "Marginal accuracy (2-way TVD, matched)",
            _e(equivalence_sentence(figures, holdout_rows=holdout)),
        ],
    ]
    if tstr:
        metric = str(tstr.get("primary_metric"))
        rows.append(
            [
                f"Machine learning on target {_e(tstr.get('target'))} "
                f"({_e(_METRICS.get(metric, metric))} on real holdout rows)",
                _tstr_line(figures),
            ]
        )
    else:
        rows.append(["Machine learning", "no target declared: TSTR not run"])
    aid = (
        "Pass: every gated figure met its threshold on these samples; the intervals show "
        "how far the ML scores could move on other test rows."
        if passed
        else "Refusal: at least one gated figure missed its threshold (see Gate checks); "
        "one close to it (for the TSTR gap: a threshold inside the gap's interval) is a "
        "near miss, one far beyond it means the generator or its budget does not fit "
        "this table."
    )
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return (
        f"<h2>Utility at a glance</h2><table><tbody>{body}</tbody></table>"
        f'<p class="note"><b>Reading aid.</b> {_e(aid)}</p>'
    )


_METRICS = {"auc": "ROC AUC", "macro_f1": "macro-F1", "r2": "R2"}


def equivalence_sentence(
    figures: Mapping[str, Any], *, holdout_rows: Any = None, rows: bool = True
) -> str:
    """The sentence "as accurate as a random sample of X% of the real training rows (N
    rows)", or the honest bound when the match fell outside the sizes tried. ``rows=False`` leaves
    the row count out (it is a count of the real table)."""
    fraction = _finite(figures.get("equivalent_sample_fraction"))
    clamp = _finite(figures.get("equivalent_sample_clamp"))
    count = _finite(figures.get("equivalent_sample_rows"))
    if clamp is None:
        return "not computed"
    if fraction is None:  # a published clamped match carries no number (datasheet)
        if clamp < 0:
            return "less accurate than the smallest random sample of the real training rows tried"
        if clamp > 0:
            return "at least as accurate as the largest random sample of the real rows tried"
        return "not computed"
    size = f" ({count:,.0f} rows)" if rows and count is not None else ""
    share = f"{_percent(fraction)} of the real training rows{size}"
    if clamp < 0:
        return f"less accurate than a random sample of {share}, the smallest sample tried"
    if clamp > 0:
        if fraction >= 1.0:
            return "at least as accurate as all the real training rows (> 100%)"
        return f"at least as accurate as a random sample of {share}, the largest sample tried"
    text = f"as accurate as a random sample of {share}"
    h = _finite(holdout_rows)
    if rows and count is not None and h is not None and count > h:
        text += f"; above the holdout's {h:,.0f} rows the match is coarse"
    return text


def _tstr_line(figures: Mapping[str, Any]) -> str:
    def ci(name: str) -> str:
        return (
            f"{_n(figures.get(name))} [{_n(figures.get(name + '_low'))} &ndash; "
            f"{_n(figures.get(name + '_high'))}]"
        )

    return (
        f"trained on synthetic {ci('tstr_score')}, trained on real {ci('trtr_score')}; "
        f"gap {ci('tstr_gap')}"
    )


def _percent(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _rounded(value: Any) -> Any:
    number = _finite(value)
    return value if number is None else round(number)


# ------------------------------------------------------------ per column and per pair
def _pairs(figures: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    d = details.get("sample_equivalence")
    if not isinstance(d, Mapping):
        return ""
    out = ["<h2>Marginal error per column and per pair (holdout vs synthetic)</h2>"]
    columns = d.get("column_tvd")
    if isinstance(columns, Mapping) and columns:
        ordered = sorted(columns.items(), key=lambda kv: -float(kv[1]))
        chart = svg.hbars(
            title="1-way TVD per column (worst first)",
            labels=[str(k) for k, _ in ordered],
            values=[float(v) for _, v in ordered],
        )
        out.append(f"<figure>{chart}</figure>")
    for table in d.get("pair_tables", []):
        if not isinstance(table, Mapping):
            continue
        a, b = table["columns"]
        peak = max([v for m in (table["real"], table["synthetic"]) for r in m for v in r] + [0])
        hidden = [f"{n} of {c}" for n, c in zip(table.get("hidden", []), (a, b)) if n]
        note = f" (smallest labels not shown: {', '.join(hidden)})" if hidden else ""
        out.append(
            f"<h3>{_e(a)} &times; {_e(b)}: 2-way TVD {_n(table.get('tvd'))}{_e(note)}</h3>"
            '<div class="row">'
        )
        for title, key in (("real (holdout)", "real"), ("synthetic", "synthetic")):
            chart = svg.grid(
                title=title, rows=table["rows"], cols=table["cols"], matrix=table[key], peak=peak
            )
            out.append(f"<figure>{chart}</figure>")
        out.append("</div>")
    pairs = d.get("pair_tvd")
    if isinstance(pairs, list) and pairs:
        rows = [[_e(a), _e(b), _n(v)] for a, b, v in pairs]
        out.append("<h3>Worst pairs by 2-way TVD</h3>" + _table(["column", "column", "TVD"], rows))
    fractions, values = d.get("sample_fractions"), d.get("sample_tvd")
    level = _finite(d.get("synthetic_tvd"))
    if isinstance(fractions, list) and isinstance(values, list) and fractions and level is not None:
        clamp = _finite(figures.get("equivalent_sample_clamp"))
        match = _finite(figures.get("equivalent_sample_fraction")) if clamp == 0 else None
        chart = svg.curve(
            title="2-way TVD of random samples of the real training rows vs the holdout",
            fractions=fractions,
            values=values,
            level=level,
            match=match,
        )
        out.append(
            "<h3>Sample equivalence</h3><p>Each point: the mean 2-way TVD of "
            f"{_n(d.get('draws'))} random samples of that share of the training rows against "
            "the holdout; the dashed line: the synthetic table's, on the same holdout rows. "
            f"Result: {_e(equivalence_sentence(figures, holdout_rows=d.get('holdout_rows')))}."
            f"</p><figure>{chart}</figure>"
        )
    return "".join(out)
