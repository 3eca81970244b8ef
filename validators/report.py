"""The internal validation report: report.json and a self-contained report.html.

It holds figures computed against the real data (not DP), so it is written only into the
private workspace: the directory gets mode 0o700, the files 0o600, written atomically.
The HTML has inline CSS and no scripts or external links, so it reads offline.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthrelease.validators.expectations import ExpectationResult
from synthrelease.validators.gate import Verdict
from synthrelease.validators.report_sections import render_glance, render_sections

logger = logging.getLogger(__name__)

JSON_NAME = "report.json"
HTML_NAME = "report.html"
_MAX_DEPTH = 6

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1d232a}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#5a6570}.banner{padding:.6rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.pass{background:#e3f4e6;color:#18642a}.fail{background:#fbe4e4;color:#8c1c1c}
.note{background:#fff6dc;border-left:4px solid #d9a300;padding:.5rem 1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #dde2e6;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.num{font-family:ui-monospace,monospace;text-align:right}
span.ok{color:#18642a;font-weight:600}span.bad{color:#8c1c1c;font-weight:600}
figure{margin:.5rem 0}.row{display:flex;flex-wrap:wrap;gap:1rem}h3{font-size:1rem}
"""


def write_internal_report(
    directory: Path,
    *,
    run_id: str,
    spec_name: str,
    verdict: Verdict,
    figures: Mapping[str, float | None],
    expectations: ExpectationResult | None,
    privacy: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    data_docs: str | None = None,
    domain: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.json`` and ``report.html`` into ``directory``; return the HTML path.

    ``details``/``errors``: the evaluation's details (plots, TSTR, attacks) and the
    error types of checks that failed to run; ``data_docs``: a link, relative to
    ``directory``, to the GX Data Docs; ``domain``: per source and column, how many
    values the out-of-domain rules clipped and how many rows they dropped (real-data
    counts: they appear here and nowhere else).
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    payload = {
        "kind": "synthrelease internal validation report",
        "run_id": str(run_id),
        "spec_name": str(spec_name),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "verdict": verdict.to_dict(),
        "figures": {str(k): _finite_or_none(v) for k, v in figures.items()},
        "expectations": None if expectations is None else expectations.to_dict(),
        "privacy": _jsonable(privacy),
        "details": _jsonable(details or {}, depth=-4),
        "errors": {str(k): str(v) for k, v in (errors or {}).items()},
        "data_docs": data_docs,
        "domain": _jsonable(domain or {}),
    }
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False)
    _write_private(directory / JSON_NAME, text + "\n")
    html_path = directory / HTML_NAME
    _write_private(html_path, _render_html(payload, figures))
    logger.info("internal report written (%s, %s)", JSON_NAME, HTML_NAME)
    return html_path


def _write_private(path: Path, text: str) -> None:
    """Create the file 0o600 from the start (no window with wider permissions)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return "..."
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, numbers.Real):
        return _finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if hasattr(value, "model_dump"):  # pydantic models (e.g. a budget plan)
        return _jsonable(value.model_dump(mode="json"), depth + 1)
    return str(value)


# --------------------------------------------------------------------------- HTML
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _e(f"{value:.6g}")
    return _e(value)


def _mark(passed: bool) -> str:
    return '<span class="ok">pass</span>' if passed else '<span class="bad">FAIL</span>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _render_value(value: Any, depth: int = 0) -> str:
    if isinstance(value, Mapping) and depth < _MAX_DEPTH:
        rows = [
            [f"<th>{_e(k)}</th>", f"<td>{_render_value(v, depth + 1)}</td>"]
            for k, v in value.items()
        ]
        return _table(["item", "value"], rows) if rows else "&mdash;"
    if isinstance(value, list) and depth < _MAX_DEPTH:
        return "<br>".join(_render_value(v, depth + 1) for v in value) or "&mdash;"
    return _fmt(value)


def _render_html(payload: Mapping[str, Any], raw_figures: Mapping[str, Any]) -> str:
    verdict = payload["verdict"]
    passed = bool(verdict["passed"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Internal report: {_e(payload['spec_name'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Internal validation report: {_e(payload['spec_name'])}</h1>",
        f'<p class="meta">run {_e(payload["run_id"])} &middot; {_e(payload["created_utc"])}</p>',
        f'<div class="banner {"pass" if passed else "fail"}">Gate verdict: '
        f"{'PASSED' if passed else 'FAILED'}</div>",
        '<p class="note">Internal: the figures below were computed against the real data and '
        "are not differentially private. Keep this report in the private workspace.</p>",
        render_glance(figures=raw_figures, details=payload["details"], passed=passed),
        "<h2>Gate checks</h2>",
        _table(
            ["check", "figure", "threshold", "verdict", "reason"],
            [
                [
                    f"<td>{_e(c['name'])}</td>",
                    f'<td class="num">{_fmt(c["figure"])}</td>',
                    f'<td class="num">{_fmt(c["threshold"])}</td>',
                    f"<td>{_mark(bool(c['passed']))}</td>",
                    f"<td>{_e(c['reason'])}</td>",
                ]
                for c in verdict["checks"]
            ],
        ),
        "<h2>Figures</h2>",
        _table(
            ["figure", "value"],
            [
                [f"<td>{_e(k)}</td>", f'<td class="num">{_figure_text(raw_figures.get(k))}</td>']
                for k in payload["figures"]
            ],
        )
        if payload["figures"]
        else "<p>No figures were computed.</p>",
        render_sections(
            figures=raw_figures,
            details=payload["details"],
            errors=payload["errors"],
            data_docs=payload["data_docs"],
        ),
        "<h2>Out-of-domain values (real rows, before training)</h2>",
        _domain_html(payload.get("domain") or {}),
        "<h2>Expectations (synthetic data, schema suite)</h2>",
        _expectations_html(payload["expectations"]),
        "<h2>Privacy accounting</h2>",
        _render_value(payload["privacy"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _domain_html(domain: Mapping[str, Any]) -> str:
    rows = [
        [
            f"<td>{_e(source)}</td>",
            f"<td>{_e(column)}</td>",
            f'<td class="num">{_e(c.get("clipped", 0))}</td>',
            f'<td class="num">{_e(c.get("dropped", 0))}</td>',
        ]
        for source, columns in domain.items()
        if isinstance(columns, Mapping)
        for column, c in columns.items()
        if isinstance(c, Mapping)
    ]
    if not rows:
        return "<p>No out-of-domain counts were recorded.</p>"
    return _table(["source", "column", "values clipped", "rows dropped"], rows)


def _figure_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "missing" if value is None else "not a number"
    return _fmt(float(value))


def _expectations_html(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "<p>The expectation suite was not run.</p>"
    head = f"<p>Suite: {_mark(bool(result['success']))}"
    if result.get("error"):
        head += f" &middot; the run raised {_e(result['error'])}"
    head += "</p>"
    rows = [
        [
            f"<td>{_e(r['expectation'])}</td>",
            f"<td>{_fmt(r['column'])}</td>",
            f"<td>{_mark(bool(r['success']))}</td>",
        ]
        for r in result["results"]
    ]
    return head + (_table(["expectation", "column", "result"], rows) if rows else "")
