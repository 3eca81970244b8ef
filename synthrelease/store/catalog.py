"""A static HTML catalog of every release in a store, written to ``<root>/index.html``.

Built from the public manifests and histories only (DP guarantee, schema size, gate
verdicts, files with relative download links, models, datasheets). Self-contained: no
script, no external CSS; every value is HTML-escaped. Regenerated after each publish,
withdrawal and retention run; ``synthrelease releases catalog`` rebuilds it by hand.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any
from urllib.parse import quote

from synthrelease.manifest import SEEDED_NOISE
from synthrelease.store.files import CATALOG, StoreFiles

log = logging.getLogger(__name__)

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.tag{font-size:.8em;padding:0 .4em;border-radius:.3em}
.latest{background:#d8f5d8}.withdrawn{background:#f8d7d7}.muted{color:#777}
.warn{background:#f8d7d7;font-weight:bold}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _link(dataset: str, version: str, rel: str, label: str | None = None) -> str:
    href = "/".join(quote(p) for p in (dataset, version, *rel.split("/")))
    return f'<a href="{_e(href)}">{_e(label or rel)}</a>'


def _warnings(m: dict[str, Any]) -> list[str]:
    """Plain warnings for a release: seeded (test) noise; metadata read without DP."""
    out = []
    if m.get("noise") == SEEDED_NOISE:
        out.append(f"noise: {SEEDED_NOISE}")
    prov = m.get("provenance") or {}
    drafted = [c for c, v in (prov.get("columns") or {}).items() if v.get("domain") == "drafted"]
    if drafted:
        out.append(
            "NOT DP: domains of "
            + ", ".join(drafted)
            + " read from the rows by spec draft without DP"
        )
    values = [k for k in ("synthetic_rows", "delta") if prov.get(k) == "drafted"]
    if values:
        out.append("NOT DP: " + ", ".join(values) + " derived from the rows without DP")
    return out


def _row(
    store: StoreFiles,
    dataset: str,
    version: str,
    latest: str | None,
    withdrawn: dict[str, dict[str, Any]],
) -> str:
    m = store.manifest(dataset, version)
    p = m["privacy"]
    tags = []
    if version == latest:
        tags.append('<span class="tag latest">latest</span>')
    if version in withdrawn:
        w = withdrawn[version]
        tags.append(
            f'<span class="tag withdrawn">withdrawn {_e(w.get("at", ""))}: '
            f"{_e(w.get('reason', ''))}</span>"
        )
    files = m.get("files", {})
    sheets = [r for r in files if r.rsplit("/", 1)[-1].lower().startswith("datasheet")]
    docs = [_link(dataset, version, "README.md", "README")] if "README.md" in files else []
    docs += [_link(dataset, version, r) for r in sheets]
    models = []
    for x in m.get("models", []):
        card_md = x["card"].rsplit("/", 1)[0] + "/README.md"
        card = card_md if card_md in files else x["card"]
        models.append(
            f"{_e(x['name'])} ({_e(x.get('kind', ''))}): "
            f"{_link(dataset, version, x['file'], 'ONNX')}, "
            f"{_link(dataset, version, card, 'card')}"
        )
    if m.get("publication", {}).get("generator"):
        models.append(
            "DP generator: "
            + ", ".join(
                _link(dataset, version, r) for r in m["publication"].get("generator_files", [])
            )
        )
    tags += [f'<span class="tag warn">{_e(w)}</span>' for w in _warnings(m)]
    checks = m.get("gate", {}).get("checks", [])
    gate = "passed" if m.get("gate", {}).get("passed") else "not passed"
    eps, delta = f"{float(p['epsilon']):g}", f"{float(p['delta']):g}"
    return (
        "<tr>"
        f"<td><code>{_e(dataset)}@{_e(version)}</code> {' '.join(tags)}<br>"
        f'<span class="muted">{_e(m.get("created", ""))}</span></td>'
        f"<td>&epsilon; = {_e(eps)}, &delta; = {_e(delta)}<br>"
        f'<span class="muted">{_e(p.get("accountant", ""))}; {_e(p.get("neighbouring", ""))}</span></td>'
        f"<td>{_e(m.get('generator', {}).get('name', ''))}</td>"
        f"<td>{_e(m.get('synthetic_rows', ''))} rows, {len(m.get('schema', {}).get('columns', {}))} columns</td>"
        f"<td>{_e(gate)} ({len(checks)} checks)</td>"
        f"<td>{'<br>'.join(_link(dataset, version, t) for t in m.get('tables', []))}</td>"
        f"<td>{'<br>'.join(models) or '&mdash;'}</td>"
        f"<td>{' '.join(docs) or '&mdash;'} {_link(dataset, version, 'manifest.json', 'manifest')}</td>"
        "</tr>"
    )


def render_catalog(store: StoreFiles) -> str:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Synthetic data releases</title><style>{_STYLE}</style></head><body>",
        "<h1>Synthetic data releases</h1>",
        "<p>Every table here was sampled from a differentially private (DP) generator; "
        "every model was trained on such a table only and inherits its guarantee by "
        "post-processing. The original data never leaves its custodian. Each release's "
        "<code>manifest.json</code> lists the sha256 of every file: "
        "<code>synthrelease pull NAME@VERSION</code> verifies them.</p>",
        f'<p class="muted">Generated {_e(now)}.</p>',
    ]
    datasets = store.datasets()
    if not datasets:
        parts.append("<p>No releases yet.</p>")
    for dataset in datasets:
        latest, withdrawn = store.latest(dataset), store.withdrawn(dataset)
        parts.append(f'<h2 id="{_e(dataset)}">{_e(dataset)}</h2>')
        parts.append(
            "<table><tr><th>release</th><th>DP guarantee</th><th>generator</th>"
            "<th>contents</th><th>gate</th><th>tables</th><th>models</th><th>docs</th></tr>"
        )
        for version in reversed(store.versions(dataset)):
            parts.append(_row(store, dataset, version, latest, withdrawn))
        parts.append("</table>")
        gone = [e for e in store.history(dataset) if e.get("purged")]
        if gone:
            parts.append(
                '<p class="muted">Deleted versions: '
                + "; ".join(
                    f"{_e(e['version'])} ({_e(e['event'])} {_e(e.get('at', ''))}: {_e(e.get('reason', ''))})"
                    for e in gone
                )
                + "</p>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_catalog(store: StoreFiles) -> str:
    """Render and write ``<root>/index.html`` in one put; returns its path."""
    text = render_catalog(store).encode()
    path = store._p(CATALOG)
    with store.io("write the catalog to"):
        store.makedirs(store.root)
        store.write_atomic(path, text)
    log.info("catalog written", extra={"store": store.uri})
    return path
