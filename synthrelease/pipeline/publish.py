"""Publishing: if (and only if) the gate passed, the synthetic table, the models trained
on it, the opt-in DP generator and the metadata, through the leak firewall."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from synthrelease.errors import FirewallError
from synthrelease.firewall import Artifact, Provenance
from synthrelease.manifest import build_manifest, release_readme
from synthrelease.models.release import model_entries, train_release_models
from synthrelease.owner_only import FILE_MODE
from synthrelease.pipeline.admission import check_spend
from synthrelease.pipeline.checks import validation_columns
from synthrelease.pipeline.context import (
    AUDIT_FILE,
    FIGURES_FILE,
    PRIVACY_FILE,
    PUBLISHED_FILE,
    VERDICT_FILE,
    PinnedRun,
    write_json,
)
from synthrelease.pipeline.fit import discretiser_of
from synthrelease.private import database
from synthrelease.private.model_eval import evaluate_models
from synthrelease.private.parts import StoredPart
from synthrelease.private.rowscan import scan_tables
from synthrelease.private.workspace import RunPaths, Workspace
from synthrelease.spec import ReleaseSpec
from synthrelease.store import ReleaseStore
from synthrelease.validators import datasheet as ds
from synthrelease.validators.audit import public_audit

log = logging.getLogger(__name__)


def _public_spec(spec: ReleaseSpec, paths: RunPaths) -> ReleaseSpec:
    """The spec with every undeclared domain replaced by the generator's DP estimate (a DP
    output, public): what the datasheet, the manifest, the models and the row scan use.
    Its digest stays the one of the spec as written."""
    if all(getattr(c, "declared", True) for c in spec.columns.values()):
        return spec
    digest = spec.digest()
    schema = spec.schema_.model_copy(update={"columns": validation_columns(spec, paths)})
    public = spec.model_copy(update={"schema_": schema})
    public._digest = digest
    return public


def _datasheet_files(
    spec: ReleaseSpec,
    paths: RunPaths,
    *,
    privacy: dict[str, Any],
    verdict: dict[str, Any],
    audit: dict[str, Any],
) -> dict[str, Path]:
    """Write the public datasheet (JSON and Markdown) into the run folder; real-data
    figures go in only when the spec opts in (``gate.publish_figures``)."""
    import pandas as pd

    figures = None
    if spec.gate.publish_figures:
        figures = json.loads((paths.root / FIGURES_FILE).read_text())["figures"]
    sheet = ds.build_datasheet(
        spec=spec,
        privacy=privacy,
        verdict=verdict,
        figures=figures,
        synthetic=pd.read_parquet(paths.synthetic),
        audit=audit,
    )
    folder = paths.root / "datasheet"
    write_json(folder / ds.JSON_NAME, sheet)
    markdown = folder / ds.MARKDOWN_NAME
    fd = os.open(markdown, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(ds.datasheet_markdown(sheet))
    return {ds.JSON_NAME: folder / ds.JSON_NAME, ds.MARKDOWN_NAME: markdown}


def publish(run: PinnedRun) -> str | None:
    """Publish if (and only if) the gate passed: the synthetic table, the spec's models
    (trained on that table only), the DP generator if the spec opts in, and metadata.
    Every file passes the leak firewall (provenance, file types, model lineage, a row
    scan against the sensitive rows) before the release becomes visible. Returns its id,
    or None when the gate refused (``finish`` then says so, with the gate's bits).
    """

    spec, paths = run.spec, run.paths
    verdict = json.loads((paths.root / VERDICT_FILE).read_text())
    if not verdict.get("passed"):
        return None
    privacy = json.loads((paths.root / PRIVACY_FILE).read_text())
    check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
    try:
        audit = public_audit(json.loads((paths.root / AUDIT_FILE).read_text()))
    except (OSError, ValueError):
        audit = public_audit(None)  # the gate may leave it out (gate.privacy_audit: false)
    spec = _public_spec(spec, paths)
    created = dt.datetime.now(dt.UTC)
    store = ReleaseStore(spec.store.uri)
    version = store.next_version(spec.name, created)
    table_rel = f"synthetic/{spec.name}.parquet"
    files: dict[str, Artifact] = {table_rel: Artifact(paths.synthetic, Provenance.SYNTHETIC)}
    files.update(
        train_release_models(
            spec,
            table_rel=table_rel,
            table_path=paths.synthetic,
            out_dir=paths.root / "models",
            release_id=f"{spec.name}@{version}",
            privacy=privacy,
        )
    )
    generator_files = {  # opt-in only; the firewall refuses them otherwise
        f"generator/{f.name}": Artifact(f, Provenance.DP_GENERATOR)
        for f in (sorted(paths.model.iterdir()) if spec.publish.generator else [])
        if f.is_file()
    }
    files.update(generator_files)
    # issue 5: the public datasheet (validators/datasheet.py; no real-data figure unless opted in)
    files.update(
        {
            rel: Artifact(path, Provenance.METADATA)
            for rel, path in _datasheet_files(
                spec, paths, privacy=privacy, verdict=verdict, audit=audit
            ).items()
        }
    )
    row_scan = _internal_release_checks(spec, paths, files)
    manifest = build_manifest(
        spec,
        privacy=privacy,
        gate={k: v for k, v in verdict.items() if k != "report"},
        tables=[table_rel],
        created=created,
        models=model_entries(spec),
        generator_files=sorted(generator_files),
        run_spec_sha256=run.spec_sha256,
        audit=audit,
    )
    store.publish(
        spec.name,
        files=files,
        manifest=manifest,
        created=created,
        readme=release_readme,
        row_scan=row_scan,
        allow_generator=spec.publish.generator,
        version=version,
        keep_last=spec.store.retention.keep_last,
    )
    release_id = f"{spec.name}@{version}"
    write_json(paths.root / PUBLISHED_FILE, {"release_id": release_id})
    return release_id


def _internal_release_checks(spec: ReleaseSpec, paths: RunPaths, files: dict[str, Any]) -> Any:
    """Against the sensitive rows, inside the workspace: the firewall's row scan of every
    synthetic table (pass/fail), and the models' train-synthetic/test-real figures
    (written to the run's private folder only)."""

    ws = Workspace(spec.workspace.path)
    train = ws.load_table(paths.train, label=f"{spec.name}:train")  # bounded samples
    holdout = ws.load_table(paths.holdout, label=f"{spec.name}:holdout")
    tables = {rel: a.path for rel, a in files.items() if a.provenance is Provenance.SYNTHETIC}
    heldout = spec.holdout.source is not None
    if database.in_database(paths.source):  # the rows never left the database
        counted = database.plan(
            spec.source,
            spec.columns,
            discretiser_of(spec),
            counts_only=True,
            fraction=float(spec.holdout.fraction or 0.2),
        )
        if counted is None:
            raise FirewallError(
                "row scan: the source's columns changed since training; nothing was published"
            )
        row_scan = database.scan_tables(
            tables,
            plan_=counted,
            root=paths.source,
            columns=spec.columns,
            train_sample=train,
            holdout_sample=holdout,
        )
    else:
        row_scan = scan_tables(  # every real row, streamed from the parts
            tables,
            train=StoredPart(paths.source, f"{spec.name}:train", None if heldout else 0),
            holdout=(
                StoredPart(paths.heldout, f"{spec.name}:holdout")
                if heldout
                else StoredPart(paths.source, f"{spec.name}:holdout", 1)
            ),
            columns=spec.columns,
            train_sample=train,
            holdout_sample=holdout,
        )
    models = {
        m.name: (
            (paths.root / "models" / m.name / "model.onnx").read_bytes(),
            json.loads((paths.root / "models" / m.name / "card.json").read_text()),
        )
        for m in spec.models
    }
    if models:
        evaluate_models(models, holdout=holdout, out_dir=paths.root)
    return row_scan
