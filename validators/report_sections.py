"""The internal report's sections: utility, attacks, distances, plots, errors, Data Docs,
settings; utility at a glance and the per-column and per-pair marginal error are in
``report_glance``.

Rendered from the evaluation's details (``validators/real.py``) into self-contained HTML
(inline SVG, no scripts, no external links). Internal only: these are real-data figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthrelease.validators import svg
from synthrelease.validators.report_glance import (
    _e,
    _n,
    _pairs,
    _table,
    _tstr_line,
    equivalence_sentence,
    render_glance,
)

# render_glance and equivalence_sentence are re-exported: report.py and datasheet.py
# import them from here.
__all__ = ["equivalence_sentence", "render_glance", "render_sections"]

_ATTACKS = (
    (
        "Membership inference (DOMIAS-style, AUC)",
        "mia_auc",
        "mia_auc_low",
        "mia_auc_high",
        "membership",
    ),
    (
        "Singling out (anonymeter manner)",
        "singling_out_risk",
        "singling_out_risk_low",
        "singling_out_risk_high",
        "singling_out",
    ),
    (
        "Linkability (anonymeter manner)",
        "linkability_risk",
        "linkability_risk_low",
        "linkability_risk_high",
        "linkability",
    ),
    (
        "Attribute inference, pooled (anonymeter manner)",
        "inference_risk",
        "inference_risk_low",
        "inference_risk_high",
        "inference",
    ),
)


def render_sections(
    *,
    figures: Mapping[str, Any],
    details: Mapping[str, Any],
    errors: Mapping[str, str],
    data_docs: str | None,
) -> str:
    parts = [
        _errors(errors),
        _utility(figures, details),
        _attacks(figures, details),
        _distances(figures, details),
        _plots(details),
        _pairs(figures, details),
        _docs(data_docs),
        _settings(details),
    ]
    return "\n".join(p for p in parts if p)


def _errors(errors: Mapping[str, str]) -> str:
    if not errors:
        return ""
    rows = [[_e(name), _e(kind)] for name, kind in sorted(errors.items())]
    return (
        "<h2>Checks that failed to run</h2><p>Their figures are NaN, so the gate fails "
        "them. Only the error type is kept (messages can quote values).</p>"
        + _table(["check", "error"], rows)
    )


def _utility(figures: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    rows = [
        [
            "1/2/3-way marginal TVD (holdout)",
            f"{_n(figures.get('tvd_1way'))} / {_n(figures.get('tvd_2way'))} / "
            f"{_n(figures.get('tvd_3way'))}",
        ],
        [
            "SDMetrics quality: column shapes / pair trends / overall",
            f"{_n(figures.get('quality_column_shapes'))} / "
            f"{_n(figures.get('quality_column_pair_trends'))} / {_n(figures.get('quality_score'))}",
        ],
        [
            "SDMetrics diagnostic: validity / structure / overall",
            f"{_n(figures.get('diagnostic_data_validity'))} / "
            f"{_n(figures.get('diagnostic_data_structure'))} / {_n(figures.get('diagnostic_score'))}",
        ],
        [
            "Association gap (mean |Cramér's V real - synthetic|)",
            _n(figures.get("association_gap")),
        ],
        [
            "k-marginal score (SDNist scale, 3-way; 1,000 is perfect)",
            _n(figures.get("kmarginal_score")),
        ],
        ["Sample equivalence (2-way TVD)", _e(equivalence_sentence(figures))],
    ]
    out = "<h2>Utility</h2>" + _table(["figure", "value"], rows)
    tstr = details.get("tstr")
    if isinstance(tstr, Mapping):
        scores = tstr.get("scores", {})
        metrics = sorted({m for s in scores.values() if isinstance(s, Mapping) for m in s})
        rows = [
            [_e(name)] + [_n(scores.get(name, {}).get(m)) for m in metrics]
            for name in ("synthetic", "real", "dummy")
        ]
        out += (
            f"<h3>Train on synthetic, test on real: target {_e(tstr.get('target'))} "
            f"({_e(tstr.get('task'))}, {_e(tstr.get('model'))}; gated metric "
            f"{_e(tstr.get('primary_metric'))})</h3>" + _table(["trained on"] + metrics, rows)
        )
        out += f"<p>{_e(tstr.get('primary_metric'))}, 95% bootstrap intervals over the " + (
            f"{_n(tstr.get('test_rows'))} holdout test rows (no refits): {_tstr_line(figures)}</p>"
        )
    problems = {k: v for k, v in details.get("sdmetrics", {}).items() if k.endswith("_problems")}
    for kind, props in problems.items():
        out += (
            f"<p>SDMetrics {_e(kind)}: "
            + "; ".join(
                f"{_e(p)}: {_e(', '.join(map(str, names))[:300])}" for p, names in props.items()
            )
            + "</p>"
        )
    return out


def _attacks(figures: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    rows = []
    for title, value, low, high, key in _ATTACKS:
        d = details.get(key, {}) if isinstance(details.get(key), Mapping) else {}
        rates = ""
        if "risk_attack_rate" in d:
            rates = (
                f"attack {_n(d.get('risk_attack_rate'))}, control {_n(d.get('risk_control_rate'))}"
            )
        rows.append(
            [
                _e(title),
                _n(figures.get(value)),
                f"{_n(figures.get(low))} &ndash; {_n(figures.get(high))}",
                rates,
            ]
        )
    out = "<h2>Privacy attacks</h2>" + _table(
        ["attack", "estimate", "95% interval", "success rates"], rows
    )
    per_column = (
        details.get("inference", {}).get("per_column")
        if isinstance(details.get("inference"), Mapping)
        else None
    )
    if isinstance(per_column, Mapping):
        rows = [
            [
                _e(c),
                _n(r.get("value")),
                f"{_n(r.get('low'))} &ndash; {_n(r.get('high'))}",
                _n(r.get("attack_rate")),
                _n(r.get("control_rate")),
            ]
            for c, r in per_column.items()
            if isinstance(r, Mapping)
        ]
        out += "<h3>Attribute inference per secret column</h3>" + _table(
            ["secret", "risk", "95% interval", "attack", "control"], rows
        )
    return out


def _distances(figures: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    rows = [
        [_e(k), _n(figures.get(k))]
        for k in (
            "dcr_train_share",
            "nndr_train_share",
            "near_copy_share",
            "near_copy_holdout_share",
            "near_copy_excess",
            "exact_copy_share",
            "exact_copy_holdout_share",
            "exact_copy_excess",
        )
    ]
    d = details.get("distance")
    if isinstance(d, Mapping):
        for key in (
            "dcr_train_quantiles",
            "dcr_holdout_quantiles",
            "nndr_train_quantiles",
            "nndr_holdout_quantiles",
        ):
            q = d.get(key, {})
            rows.append([_e(key), " / ".join(_n(q.get(p)) for p in ("p05", "p50", "p95"))])
    return "<h2>Distances and copies</h2>" + _table(["figure", "value"], rows)


def _plots(details: Mapping[str, Any]) -> str:
    plots = details.get("plots")
    if not isinstance(plots, Mapping):
        return ""
    out = ["<h2>Distributions (holdout vs synthetic, public bins)</h2>"]
    for name, d in plots.get("distributions", {}).items():
        chart = svg.bars(
            title=str(name), labels=d["labels"], real=d["real"], synthetic=d["synthetic"]
        )
        out.append(f"<figure>{chart}</figure>")
    assoc = plots.get("association")
    if isinstance(assoc, Mapping):
        cols, real, synth = assoc["columns"], assoc["real"], assoc["synthetic"]
        diff = [[abs(a - b) for a, b in zip(r, s)] for r, s in zip(real, synth)]
        out.append('<h2>Associations (Cramér\'s V)</h2><div class="row">')
        for title, m in (("real (holdout)", real), ("synthetic", synth), ("|difference|", diff)):
            out.append(f"<figure>{svg.heatmap(title=title, columns=cols, matrix=m)}</figure>")
        out.append("</div>")
    return "".join(out)


def _docs(data_docs: str | None) -> str:
    if not data_docs:
        return ""
    return (
        f'<h2>Great Expectations Data Docs</h2><p><a href="{_e(data_docs)}">'
        f"{_e(data_docs)}</a> (in this folder; unstyled when offline).</p>"
    )


def _settings(details: Mapping[str, Any]) -> str:
    settings = details.get("settings")
    if not isinstance(settings, Mapping):
        return ""
    rows = [[_e(k), _n(v)] for k, v in settings.items()]
    return "<h2>Validation sample sizes</h2>" + _table(["setting", "value"], rows)
