"""SDMetrics 0.32 QualityReport (column shapes, column-pair trends) and DiagnosticReport.

Fail closed, unlike SDMetrics' own aggregation: a property whose details hold a NaN
score or an error (SDMetrics averages those away with ``nanmean``) is reported as NaN,
and so is the overall score, so the gate fails it. The columns and metrics that broke
are named in the details (names only). SDMetrics' single-table reports are used (its
unified reports add an empty "Constraint Validity" property that changes the overall
diagnostic score); their import-time FutureWarning and any run-time warning are
silenced, because warnings can quote values.

FACTS.md: a quality score can look good for a useless or a copying generator; it is one
figure next to TSTR and the privacy checks, never a gate on its own.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.sdmetrics_reports")  # real-data results

# Its figures are declared (and gated) by validators/checks/sdmetrics.py.
_PROPERTIES = {
    "quality": {
        "Column Shapes": "quality_column_shapes",
        "Column Pair Trends": "quality_column_pair_trends",
    },
    "diagnostic": {
        "Data Validity": "diagnostic_data_validity",
        "Data Structure": "diagnostic_data_structure",
    },
}


def sdmetrics_metadata(specs: Mapping[str, object]) -> dict[str, Any]:
    columns: dict[str, dict[str, str]] = {}
    for name, spec in specs.items():
        if isinstance(spec, (CategoricalColumn, BooleanColumn)):
            columns[name] = {"sdtype": "categorical"}  # booleans arrive as "True"/"False"
        elif isinstance(spec, DatetimeColumn):
            columns[name] = {"sdtype": "datetime"}
        else:
            columns[name] = {"sdtype": "numerical"}
    return {"columns": columns}


def sdmetrics_figures(
    *, real: pd.DataFrame, synthetic: pd.DataFrame, specs: Mapping[str, object]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Typed frames in (``features.typed_frame``): scores and per-column details out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import DiagnosticReport, QualityReport

        metadata = sdmetrics_metadata(specs)
        constant = _constant_columns(real)
        figures: dict[str, float] = {}
        details: dict[str, Any] = {}
        for kind, report in (("quality", QualityReport()), ("diagnostic", DiagnosticReport())):
            report.generate(real, synthetic, metadata, verbose=False)
            scores, broken = {}, {}
            for prop, key in _PROPERTIES[kind].items():
                table = report.get_details(prop)
                problems = _problems(table, constant=constant)
                scores[key] = (
                    float("nan")
                    if problems
                    else _property_score(report.get_properties(), prop, table)
                )
                if problems:
                    broken[prop] = problems
                details[key] = _rows(table)
            # A property NaN with no failing row has nothing to score (every pair below
            # SDMetrics' association threshold, or a constant column): left out of the
            # mean. A property with a failing row is NaN and fails the score.
            values = [
                v
                for p, v in zip(_PROPERTIES[kind], scores.values())
                if p in broken or math.isfinite(v)
            ]
            figures.update(scores)
            figures[f"{kind}_score"] = (
                float(sum(values) / len(values))
                if values and all(math.isfinite(v) for v in values)
                else float("nan")
            )
            if broken:
                details[f"{kind}_problems"] = broken
                private_logger.warning(
                    "sdmetrics %s report: %d properties had failing metrics", kind, len(broken)
                )
    return figures, details


def _constant_columns(real: pd.DataFrame) -> frozenset[str]:
    """Columns holding at most one value in the real sample (nulls aside): a pair
    metric of such a column (a correlation, say) has no value to compare."""
    return frozenset(str(c) for c in real.columns if real[c].nunique(dropna=True) <= 1)


def _property_score(properties: pd.DataFrame, prop: str, table: pd.DataFrame) -> float:
    """SDMetrics' score of ``prop``; where SDMetrics left it NaN only because some rows
    have no score by design (see :func:`_problems`), the mean of the rows that have one."""
    score = float(properties.set_index("Property").loc[prop, "Score"])
    if math.isfinite(score) or table is None or "Score" not in table:
        return score
    present = pd.to_numeric(table["Score"], errors="coerce").dropna()
    return float(present.mean()) if len(present) else float("nan")


def _problems(table: pd.DataFrame, *, constant: frozenset[str] = frozenset()) -> list[str]:
    """Column and metric names of rows that errored or lack a score they should have.

    SDMetrics 0.32 leaves a column pair's score NaN *by design* when the pair's real
    association is below the report's threshold ("Meets Threshold?" is False); such a
    pair is not counted. Nor is a row of a column that is ``constant`` in the real sample
    (its correlation or trend is undefined: the issue-14 census table's constant `year`
    made the whole quality score NaN). Any other missing score is a failure.
    """
    if table is None or len(table) == 0:
        return ["no details"]
    bad = table["Score"].isna() if "Score" in table else pd.Series(True, index=table.index)
    if "Meets Threshold?" in table:
        excluded = table["Meets Threshold?"].astype("boolean").eq(False).fillna(False)
        bad &= ~excluded.astype(bool)
    named = [c for c in ("Column", "Column 1", "Column 2") if c in table]
    if constant:
        if named:
            touches = table[named].isin(list(constant)).any(axis=1)
            bad &= ~(touches & table["Score"].isna() if "Score" in table else touches)
    if "Error" in table:
        errored = table["Error"].notna()
        if constant and named:
            # SDMetrics reports a numeric constant as ConstantInputError: not a failure
            # when the column is constant in the real sample; any other error is
            constant_input = table["Error"].astype(str).str.contains("ConstantInputError")
            errored &= ~(constant_input & table[named].isin(list(constant)).any(axis=1))
        bad |= errored
    names = []
    for _, row in table.loc[bad].iterrows():
        cols = [
            str(row[c]) for c in ("Column", "Column 1", "Column 2") if c in row and pd.notna(row[c])
        ]
        names.append(f"{row.get('Metric', 'metric')}: {', '.join(cols)}")
    return names


def _rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Column names, metric and score only (no real-data statistics copied)."""
    keep = [c for c in ("Column", "Column 1", "Column 2", "Metric", "Score") if c in table]
    out = []
    for record in table[keep].to_dict(orient="records"):
        score = record.get("Score")
        record["Score"] = None if score is None or pd.isna(score) else float(score)
        out.append({str(k): v for k, v in record.items()})
    return out
