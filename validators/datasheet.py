"""The public datasheet of a release: only what is safe to publish.

It holds the DP guarantee (from the DP accounting), the public schema, the generator,
statistics of the *synthetic* table (post-processing of the DP output), how the release
was validated (checks, thresholds, sample sizes) and the gate's verdict (pass/fail per
check). Figures computed against the real rows (utility scores, attack results) are not
covered by DP: they appear only when the spec opts in (``gate.publish_figures: true``),
under a warning, led by the utility headline (k-marginal score, sample equivalence,
TSTR/TRTR with intervals; :func:`headline`). A figure that is a count of the real table
(:data:`UNPUBLISHED`) stays out even then. Verdicts are rebuilt from a whitelist of keys,
so an internal verdict with its figures passed in by mistake loses them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd

from synthrelease.errors import PrivacyError
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, ReleaseSpec
from synthrelease.validators.features import typed_frame
from synthrelease.validators.gate import DESCRIPTIONS
from synthrelease.validators.report_sections import equivalence_sentence

DATASHEET_FORMAT = 1
JSON_NAME = "datasheet.json"
MARKDOWN_NAME = "datasheet.md"
_CHECK_KEYS = ("name", "threshold", "bound", "passed", "reason")
# Published (opt-in) with a sentence of their own; the row count stays internal: with the
# fraction it gives the training part's size, a count of the real table.
HEADLINE_FIGURES = (
    "kmarginal_score",
    "equivalent_sample_fraction",
    "equivalent_sample_clamp",
    "tstr_score",
    "tstr_score_low",
    "tstr_score_high",
    "trtr_score",
    "trtr_score_low",
    "trtr_score_high",
    "tstr_gap",
    "tstr_gap_low",
    "tstr_gap_high",
)
UNPUBLISHED = frozenset({"equivalent_sample_rows"})
REAL_FIGURES_WARNING = (
    "computed against the real rows (training and holdout parts); NOT covered by "
    "differential privacy; published because the spec sets gate.publish_figures: true"
)


def build_datasheet(
    *,
    spec: ReleaseSpec,
    privacy: Mapping[str, Any],
    verdict: Mapping[str, Any],
    synthetic: pd.DataFrame,
    figures: Mapping[str, Any] | None = None,
    audit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The datasheet as a JSON-ready dict. ``figures`` only with ``publish_figures``;
    ``audit``: the privacy audit's public figures (:func:`~.audit.public_audit`)."""
    if figures is not None and not spec.gate.publish_figures:
        raise PrivacyError(
            "real-data figures may enter the datasheet only when the spec sets "
            "gate.publish_figures: true"
        )
    sheet: dict[str, Any] = {
        "format": DATASHEET_FORMAT,
        "kind": "synthrelease public datasheet",
        "dataset": spec.name,
        "privacy": {
            "epsilon": float(privacy["epsilon"]),
            "delta": float(privacy["delta"]),
            "accountant": privacy.get("accountant"),
            "neighbouring": "add/remove one row",
            "covers": "every statistic of the sensitive rows used by the generator; the "
            "synthetic table, this datasheet's synthetic statistics and anything computed "
            "from them (post-processing)",
            "not_covered": "the pass/fail verdict of each check (one bit each)"
            + ("" if figures is None else "; the real-data figures below"),
            "details": _jsonable(privacy),
            "audit": _jsonable(dict(audit)) if audit is not None else {"ran": False},
        },
        "generator": {"name": spec.generator.name, "params": _jsonable(spec.generator.params)},
        "schema": spec.schema_.model_dump(mode="json", exclude={"sdv_metadata"}),
        "target": spec.target,
        "synthetic": {
            "rows": int(spec.synthetic_rows),
            "statistics": synthetic_statistics(synthetic, spec.columns),
        },
        "validation": {
            "passed": verdict.get("passed") is True,
            "checks": [
                {
                    **{k: check.get(k) for k in _CHECK_KEYS},
                    "description": DESCRIPTIONS.get(str(check.get("name")), ""),
                }
                for check in verdict.get("checks", [])
                if isinstance(check, Mapping)
            ],
            "sample_rows": spec.gate.sample_rows,
            "attack_rows": spec.gate.attack_rows,
            "note": "real-data figures stay in the custodian's internal report"
            if figures is None
            else "real-data figures are published below (opt-in)",
        },
    }
    if figures is not None:
        published = {str(k): _finite(v) for k, v in figures.items() if k not in UNPUBLISHED}
        published["equivalent_sample_fraction"] = coarse_fraction(
            published.get("equivalent_sample_fraction"), published.get("equivalent_sample_clamp")
        )
        sheet["real_data_figures"] = {
            "warning": REAL_FIGURES_WARNING,
            "headline": headline(published),
            "figures": published,
        }
    return sheet


def coarse_fraction(fraction: float | None, clamp: float | None) -> float | None:
    """The sample-equivalence fraction as published (opt-in): one significant digit, and
    none when the match was clamped to the end of the grid of sample sizes. The grid is
    built from the training part's row count (its smallest sample is max(10, n/1000)
    rows, its largest at most ``marginal_rows``), so a clamped or exact fraction would
    give that count back (red-team finding F2)."""
    if fraction is None or clamp is None or clamp != 0 or fraction <= 0:
        return None
    digits = -math.floor(math.log10(fraction))
    return float(round(fraction, digits))


def headline(figures: Mapping[str, float | None]) -> dict[str, Any]:
    """The utility figures people read (opt-in only, like every real-data figure): the
    k-marginal score, the sample equivalence as a sentence (without the row count) and
    TSTR/TRTR with their 95% intervals; absent figures are None."""
    out: dict[str, Any] = {name: figures.get(name) for name in HEADLINE_FIGURES}
    out["sample_equivalence"] = equivalence_sentence(figures, rows=False)
    return out


def synthetic_statistics(synthetic: pd.DataFrame, columns: Mapping[str, object]) -> dict[str, Any]:
    """Per column, computed on the synthetic table only."""
    typed = typed_frame(synthetic, columns)
    out: dict[str, Any] = {}
    for name, spec in columns.items():
        col = typed[name]
        stats: dict[str, Any] = {"null_share": _share(col.isna().mean())}
        present = col.dropna()
        if isinstance(spec, (CategoricalColumn, BooleanColumn)):
            shares = present.value_counts() / max(1, len(col))
            stats["shares"] = {str(k): _share(v) for k, v in shares.sort_index().items()}
        elif isinstance(spec, DatetimeColumn):
            if len(present):
                stats.update(
                    min=present.min().isoformat(),
                    median=present.median().isoformat(),
                    max=present.max().isoformat(),
                )
        elif len(present):
            q = present.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_list()
            stats.update(
                mean=_finite(present.mean()),
                std=_finite(present.std()),
                min=_finite(q[0]),
                p25=_finite(q[1]),
                median=_finite(q[2]),
                p75=_finite(q[3]),
                max=_finite(q[4]),
            )
        out[name] = stats
    return out


def datasheet_markdown(sheet: Mapping[str, Any]) -> str:
    """A human-readable rendering of :func:`build_datasheet`'s output."""
    p, v = sheet["privacy"], sheet["validation"]
    lines = [
        f"# Datasheet: {sheet['dataset']} (synthetic release)",
        "",
        "## Privacy guarantee",
        f"- ({p['epsilon']:g}, {p['delta']:g})-differential privacy, {p['neighbouring']} "
        f"neighbouring; accountant: {p.get('accountant')}.",
        f"- Covers: {p['covers']}.",
        f"- Not covered: {p['not_covered']}.",
        *_audit_markdown(p.get("audit") or {}),
        "",
        "## Generator",
        f"`{sheet['generator']['name']}` with parameters `{sheet['generator']['params']}`.",
        "",
        "## Contents",
        f"{sheet['synthetic']['rows']} synthetic rows; target: {sheet.get('target') or 'none'}.",
        "",
        "| column | type | nulls | synthetic statistics |",
        "|---|---|---|---|",
    ]
    columns = sheet["schema"]["columns"]
    for name, stats in sheet["synthetic"]["statistics"].items():
        lines.append(
            f"| {_md(name)} | {columns[name]['type']} | {_fmt(stats['null_share'])} | "
            f"{_md(_stats_text(stats))} |"
        )
    lines += [
        "",
        f"## Validation: {'PASSED' if v['passed'] else 'FAILED'}",
        f"Checks ran on at most {v['sample_rows']} rows per table "
        f"({v['attack_rows']} per privacy attack). {v['note'].capitalize()}.",
        "",
        "| check | bound | threshold | result | what it measures |",
        "|---|---|---|---|---|",
    ]
    for c in v["checks"]:
        lines.append(
            f"| {_md(c['name'])} | {c.get('bound') or ''} | {_fmt(c.get('threshold'))} | "
            f"{'pass' if c.get('passed') else 'FAIL'} | {_md(c.get('description', ''))} |"
        )
    real = sheet.get("real_data_figures")
    if real:
        lines += [
            "",
            "## Real-data figures (opt-in)",
            f"**Warning:** {real['warning']}.",
            "",
        ]
        lines += _headline_markdown(real.get("headline") or {})
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_fmt(val)} |" for k, val in real["figures"].items()]
    return "\n".join(lines) + "\n"


def _audit_markdown(a: Mapping[str, Any]) -> list[str]:
    if not a.get("ran"):
        return ["- Privacy audit: did not run."]
    return [
        f"- Privacy audit ({_md(a.get('method'))}; attack: {_md(a.get('attack'))}): "
        f"{a.get('correct')} of {a.get('guesses')} guesses right on {a.get('canaries')} "
        f"canaries; epsilon lower bound {_fmt(a.get('epsilon_lower_bound'))} at "
        f"{_fmt(a.get('confidence'))} confidence, against the stated {_fmt(a.get('epsilon'))} "
        f"(the most these canaries could show: {_fmt(a.get('ceiling'))}).",
        f"  {_md(a.get('meaning'))}.",
    ]


def _headline_markdown(h: Mapping[str, Any]) -> list[str]:
    def ci(name: str) -> str:
        low, high = h.get(f"{name}_low"), h.get(f"{name}_high")
        interval = "" if low is None or high is None else f" (95% interval {low:.3f}-{high:.3f})"
        return f"{_fmt(h.get(name))}{interval}"

    score = h.get("kmarginal_score")
    score_text = "—" if score is None else f"{score:.0f}"
    lines = [
        "### Utility at a glance",
        f"- k-marginal score (SDNist scale, 1,000 x (1 - mean 3-way TVD)): {score_text} of 1,000.",
        f"- Marginal accuracy: {h.get('sample_equivalence', 'not computed')}.",
    ]
    if h.get("tstr_score") is not None:
        lines.append(
            f"- Target model scored on real holdout rows: trained on synthetic "
            f"{ci('tstr_score')}, trained on real {ci('trtr_score')}; gap {ci('tstr_gap')}."
        )
    return lines


def _stats_text(stats: Mapping[str, Any]) -> str:
    if "shares" in stats:
        top = sorted(stats["shares"].items(), key=lambda kv: -kv[1])[:5]
        return ", ".join(f"{k} {v:.1%}" for k, v in top)
    keys = [k for k in ("mean", "min", "median", "max") if k in stats]
    return ", ".join(f"{k} {_fmt(stats[k])}" for k in keys)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _share(value: Any) -> float:
    return round(float(value), 6)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    return value
