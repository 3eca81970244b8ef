"""The release, step by step, as plain functions (no Prefect here).

``flows/release.py`` sequences these as tasks. ``reserve`` pins the run: it freezes the
resolved spec into the run's private folder (``spec.json`` and its sha256 in
``run.json``) before the budget is reserved; every later step takes only that folder
(:class:`PinnedRun`) and reads the frozen copy, whatever the YAML file says by then.
Steps hand on *references* (paths in the private workspace) and public values (the DP
accounting, the gate's pass/fail): no frame and no real-data figure ever crosses a step
boundary, so none can land in a Prefect result, cache, artifact or log.

Ledger rules: ``reserve`` records the spend before any row is read; ``train`` marks the
run *touched* before its first read, and from then on the run is spent whatever ends it
(a domain rule, too few rows, a crash, the gate). A reservation is voided only when no
row was read. What a touched run says in public does not depend on the rows: see
``synthrelease/run.py`` and ``docs/threat-model.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthrelease.errors import (
    ChargedRunError,
    LedgerError,
    PrivacyError,
    SpecError,
    StepFailedError,
)
from synthrelease.ledger import BudgetLedger
from synthrelease.log import private_channel
from synthrelease.manifest import build_manifest, release_readme
from synthrelease.private.workspace import FILE_MODE, RunPaths, Workspace, tighten
from synthrelease.spec import ReleaseSpec
from synthrelease.store import ReleaseStore
from synthrelease.generators.accounting import ACCOUNTANT, PrivacyReport, cdp_eps

log = logging.getLogger(__name__)
TOUCHED = "touched"
PRIVACY_FILE = "privacy.json"
FIGURES_FILE = "figures.json"
VERDICT_FILE = "verdict.json"
DATA_DOCS_DIR = "data_docs"  # GX Data Docs, inside the run's private report folder
DOMAIN_FILE = "domain.json"
CHECKS_DIR = "checks"  # check_part outputs, merged into FIGURES_FILE
SPEC_FILE = "spec.json"  # the run's frozen, resolved spec
RUN_FILE = "run.json"  # run id, reservation, the frozen spec's sha256
FAILED = "failed"  # marker: a step failed after the first read (reason in FAILURE_FILE)
FAILURE_FILE = "failure.txt"
PUBLISHED_FILE = "published.json"
TEST_NOISE_ENV = "SYNTHRELEASE_TEST_NOISE"


@dataclass(frozen=True)
class PinnedRun:
    """One run's frozen context: the spec as it was at ``reserve``, the run id, the
    reservation and the run's private folder. Every step after ``reserve`` takes this."""

    spec: ReleaseSpec
    run_id: str
    reservation: str
    spec_sha256: str
    paths: RunPaths

    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def failed(self) -> bool:
        return (self.root / FAILED).exists()

    @classmethod
    def load(cls, run_dir: str | Path) -> "PinnedRun":
        """Read the frozen spec of the run in ``run_dir``; refuse one whose bytes no
        longer match the sha256 recorded at ``reserve``."""
        import hashlib

        root = Path(run_dir)
        try:
            meta = json.loads((root / RUN_FILE).read_text())
            raw = (root / SPEC_FILE).read_bytes()
        except (OSError, ValueError):
            raise StepFailedError(f"run folder {root} holds no pinned run") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("spec_sha256"):
            raise PrivacyError(f"the frozen spec of run {meta.get('run_id')} was changed")
        spec = ReleaseSpec.model_validate(json.loads(raw))
        spec._digest = meta["spec_digest"]
        return cls(spec=spec, run_id=meta["run_id"], reservation=meta.get("reservation", ""),
                   spec_sha256=meta["spec_sha256"], paths=RunPaths(root))


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def open_ledger(spec: ReleaseSpec) -> BudgetLedger:
    env = spec.workspace.ledger_url_env
    if env:
        url = os.environ.get(env)
        if not url:
            raise LedgerError(f"environment variable {env} (workspace.ledger_url_env) is not set")
        return BudgetLedger(url)
    ws = Workspace(spec.workspace.path).ensure()
    return BudgetLedger.sqlite(ws.ledger_path)


def run_paths(spec: ReleaseSpec, run_id: str) -> RunPaths:
    return Workspace(spec.workspace.path).ensure().run(run_id)


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)


def _discretiser(spec: ReleaseSpec):
    from synthrelease.generators.domain import DEFAULT_BINS, Discretiser

    bins = int(spec.generator.params.get("bins", DEFAULT_BINS))
    declared = {n: c for n, c in spec.columns.items() if getattr(c, "declared", True)}
    return Discretiser(declared, default_bins=bins)  # undeclared: the generator's DP estimate


# ---------------------------------------------------------------------------- steps
def preflight(spec: ReleaseSpec) -> None:
    """Cheap checks that read no rows: headers match the schema, the generator and its
    parameters are valid, the noise is secure (seeded only in tests), the ledger's pinned
    budget matches and can cover the run."""
    from synthrelease.generators import build_generator
    from synthrelease.private.sources import check_columns

    check_noise(spec)
    check_columns(spec.source, spec.columns)
    if spec.holdout.source is not None:
        check_columns(spec.holdout.source, spec.columns)
    build_generator(
        spec.generator, spec.columns, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta,
        target=spec.target,  # AIM's default workload (issue 4); ignored by the others
        domain_share=spec.privacy.domain_share,  # DP domains (dpsgd); ignored by the others
    )
    ReleaseStore(spec.store.uri)
    check_budget(spec)


def check_noise(spec: ReleaseSpec) -> None:
    """A seeded spec replays its noise for anyone who has it: refused unless the
    environment says this is a test (and then every public file says NOT PRIVATE)."""
    if spec.privacy.noise == "seeded" and os.environ.get(TEST_NOISE_ENV) != "1":
        raise SpecError(
            f"privacy.noise 'seeded' is for tests only (anyone with the spec can replay the "
            f"noise): use 'secure', or set {TEST_NOISE_ENV}=1 in a test environment"
        )


def check_budget(spec: ReleaseSpec) -> None:
    """Refuse early if the spec's budget is not the ledger's pinned one or cannot cover
    this run (``reserve`` checks again, locked)."""
    with open_ledger(spec) as ledger:
        ledger.check(spec.name, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta,
                     budget=spec.privacy.budget)


def pin(spec: ReleaseSpec, run_id: str) -> PinnedRun:
    """Freeze the resolved spec into the run's private folder (``spec.json``, its sha256
    in ``run.json``): every later step, in any engine, reads this copy."""
    import hashlib

    check_noise(spec)
    paths = run_paths(spec, run_id)
    # key order kept: the schema's column order is part of the spec
    frozen = json.dumps(spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
                        indent=1).encode()
    _write_bytes(paths.root / SPEC_FILE, frozen)
    _write_json(paths.root / RUN_FILE, {"run_id": run_id, "spec_digest": spec.digest(),
                                        "spec_sha256": hashlib.sha256(frozen).hexdigest()})
    return PinnedRun.load(paths.root)


def reserve(run: PinnedRun) -> str:
    """Record the spend in the ledger before any row is read; refuse past the table's
    pinned lifetime budget. The reservation id is added to the run's ``run.json``."""
    spec = run.spec
    meta = json.loads((run.root / RUN_FILE).read_text())
    if meta.get("reservation"):
        raise LedgerError(f"run {run.run_id} already holds a reservation")
    with open_ledger(spec) as ledger:
        rid = ledger.reserve(spec.name, epsilon=spec.privacy.epsilon,
                             delta=spec.privacy.delta, budget=spec.privacy.budget,
                             run_id=run.run_id)
        try:
            _write_json(run.root / RUN_FILE, {**meta, "reservation": rid})
        except OSError:
            ledger.void(rid, reason="run folder not writable; no row was read")
            raise
    log.info("budget reserved", extra={"dataset": spec.name, "run_id": run.run_id,
                                       "epsilon": spec.privacy.epsilon})
    return rid


def _write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)


def train(run: PinnedRun) -> dict[str, Any]:
    """Load, enforce the domain row by row, split, fit the DP generator. Returns the DP
    accounting. The run is marked *touched* before the first row is read."""
    from synthrelease.generators import build_generator
    from synthrelease.generators.noise import make_noise
    from synthrelease.private.sources import check_domain, enforce_domain, load_table, require_rows
    from synthrelease.private.workspace import split_table

    spec, paths = run.spec, run.paths
    ws = Workspace(spec.workspace.path)
    noise = make_noise(spec.privacy)
    discretiser = _discretiser(spec)
    generator = build_generator(  # parameters checked before any row is read
        spec.generator, spec.columns, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta,
        target=spec.target,  # AIM's default workload (issue 4); ignored by the others
        domain_share=spec.privacy.domain_share,  # DP domains (dpsgd); ignored by the others
    )
    (paths.root / TOUCHED).touch(mode=FILE_MODE)  # from here on, the run is spent

    def prepared(source: Any, label: str, what: str):
        table, counts = enforce_domain(load_table(source, spec.columns, label=label), spec.columns)
        check_domain(table, discretiser)  # guard: every row now encodes
        require_rows(table, what=what)
        return table, counts

    table, counts = prepared(spec.source, spec.name, f"table {spec.name!r}")
    domain = {"source": counts}
    if spec.holdout.source is not None:
        holdout, domain["holdout"] = prepared(
            spec.holdout.source, f"{spec.name}:holdout", "the holdout source"
        )
        train_part = table
    else:
        train_part, holdout = split_table(
            table, fraction=float(spec.holdout.fraction or 0.2), key=_split_key(noise)
        )
        require_rows(holdout, what=f"the holdout part of table {spec.name!r}")
        require_rows(train_part, what=f"the training part of table {spec.name!r}")
    _write_json(paths.root / DOMAIN_FILE, domain)  # private: real-data counts
    ws.save_table(train_part, paths.train)
    ws.save_table(holdout, paths.holdout)
    log.info("training", extra={"generator": spec.generator.name, "run_id": run.run_id})
    report = generator.fit(train_part, noise=noise)
    tighten(generator.save(paths.model))
    privacy = report.to_dict()
    check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
    _warn_on_delta(spec, generator)
    _write_json(paths.root / PRIVACY_FILE, privacy)
    return privacy


def _split_key(noise: Any) -> bytes:
    """128 bits for the holdout coins: from the OS CSPRNG, or (tests) the seeded stream."""
    return os.urandom(16) if noise.is_secure else noise.post_processing_rng().bytes(16)


def check_spend(privacy: dict[str, Any], *, epsilon: float, delta: float) -> PrivacyReport:
    """The one accountant route: a fit's budget lines against its reservation.

    The lines are re-added (zCDP: rho adds up; the epsilon is recomputed from the total),
    and the spend must not exceed the reserved (epsilon, delta). Fails closed: a run over
    its reservation is never published (and stays spent).
    """
    report = PrivacyReport.from_dict(privacy)
    spent = report.epsilon
    if report.accountant == ACCOUNTANT:
        spent = max(spent, cdp_eps(rho=math.fsum(line.rho for line in report.lines),
                                   delta=report.delta))
    if not (math.isfinite(spent) and spent <= epsilon * (1 + 1e-9)
            and report.delta <= delta * (1 + 1e-9)):
        raise PrivacyError(
            "the fitted generator's budget lines exceed this run's reservation; "
            "nothing is published"
        )
    return report


def _warn_on_delta(spec: ReleaseSpec, generator: Any) -> None:
    """delta should be well below 1/n; n is private, so compare with the generator's own
    DP estimate of it (post-processing: no extra budget)."""
    estimate = getattr(generator, "estimated_rows", None)
    if estimate and spec.privacy.delta * float(estimate) > 0.1:
        log.warning(
            "privacy.delta is not well below 1/n for this table (n estimated with DP); "
            "choose delta <= 1/(10 n)", extra={"dataset": spec.name, "delta": spec.privacy.delta},
        )


def sample(run: PinnedRun) -> str:
    """Sample ``synthetic_rows`` rows from the fitted generator (post-processing)."""
    from synthrelease.generators import load_generator
    from synthrelease.generators.noise import make_noise

    spec, paths, run_id = run.spec, run.paths, run.run_id
    generator = load_generator(paths.model)
    rng = make_noise(spec.privacy).post_processing_rng()
    synthetic = generator.sample(spec.synthetic_rows, rng=rng)
    synthetic.to_parquet(paths.synthetic, index=False)
    tighten(paths.synthetic)
    log.info("sampled", extra={"rows": spec.synthetic_rows, "run_id": run_id})
    return str(paths.synthetic)


def check(run: PinnedRun) -> str:
    """Run every check: the one step that reads real rows for validation (utility,
    privacy attacks, copies) plus the GX suite on the synthetic table, with Data Docs in
    the private report folder. Figures go to ``figures.json`` in the private workspace
    (the gate reads them there; none crosses a task boundary). Returns that file's path.
    :func:`check_part` and :func:`merge_checks` do the same in parts (parallel flows).
    """
    spec, paths = run.spec, run.paths
    synthetic, columns = _check_inputs(spec, paths)
    payload = {**_evaluate(spec, paths, synthetic, columns, only=None),
               "expectations": _expectations(spec, paths, synthetic, columns)}
    _write_json(paths.root / FIGURES_FILE, payload)
    return str(paths.root / FIGURES_FILE)


def check_parts(spec: ReleaseSpec) -> tuple[str, ...]:
    """The independent parts of the check step: the GX suite, then each real-data check."""
    from synthrelease.validators.evaluation import CHECKS

    return ("expectations", *(c for c in CHECKS if c != "tstr" or spec.target is not None))


def check_part(run: PinnedRun, part: str) -> str:
    """One part of the check step (see :func:`check_parts`), into the run's private
    ``checks/<part>.json``; a part's figures equal those of the whole :func:`check`."""
    spec, paths = run.spec, run.paths
    if part not in check_parts(spec):
        raise StepFailedError(f"unknown check part {part!r}; parts: {', '.join(check_parts(spec))}")
    synthetic, columns = _check_inputs(spec, paths)
    if part == "expectations":
        payload: dict[str, Any] = {"expectations": _expectations(spec, paths, synthetic, columns)}
    else:
        payload = _evaluate(spec, paths, synthetic, columns, only=[part])
    out = paths.root / CHECKS_DIR / f"{part}.json"
    _write_json(out, payload)
    return str(out)


def merge_checks(run: PinnedRun) -> str:
    """Merge the parts into ``figures.json``, failing closed: a missing or unreadable
    part records an error and leaves its figures out (the gate then fails them)."""
    spec, paths = run.spec, run.paths
    merged: dict[str, Any] = {"figures": {}, "details": {}, "errors": {}, "seconds": {}}
    merged["expectations"] = {"success": False, "results": [],
                              "error": "the expectations part did not run"}
    for part in check_parts(spec):
        try:
            payload = json.loads((paths.root / CHECKS_DIR / f"{part}.json").read_text())
        except (OSError, ValueError):
            merged["errors"][part] = "MissingPart"
            continue
        if part == "expectations":
            merged["expectations"] = payload["expectations"]
            continue
        for key in ("figures", "details", "errors", "seconds"):
            merged[key].update(payload.get(key) or {})
    _write_json(paths.root / FIGURES_FILE, merged)
    return str(paths.root / FIGURES_FILE)


def _check_inputs(spec: ReleaseSpec, paths: RunPaths) -> tuple[Any, dict[str, Any]]:
    """The synthetic table and the public domain the checks use (read once per step)."""
    import pandas as pd

    return pd.read_parquet(paths.synthetic), _validation_columns(spec, paths)


def _expectations(spec: ReleaseSpec, paths: RunPaths, synthetic: Any,
                  columns: dict[str, Any]) -> dict[str, Any]:
    """The GX suite on the synthetic table (Data Docs in the private report folder)."""
    from synthrelease.validators.expectations import run_expectations

    return run_expectations(
        synthetic, columns, expected_rows=spec.synthetic_rows,
        data_docs=paths.report / DATA_DOCS_DIR,
    ).to_dict()


def _evaluate(spec: ReleaseSpec, paths: RunPaths, synthetic: Any, columns: dict[str, Any], *,
              only: list[str] | None) -> dict[str, Any]:
    """The real-data checks (all, or ``only`` these), failing closed on any error."""
    from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
    from synthrelease.generators.noise import make_noise
    from synthrelease.validators.evaluation import Settings
    from synthrelease.validators.real import evaluate_against_real

    ws = Workspace(spec.workspace.path)
    try:
        return evaluate_against_real(
            train=ws.load_table(paths.train, label=f"{spec.name}:train"),
            holdout=ws.load_table(paths.holdout, label=f"{spec.name}:holdout"),
            synthetic=synthetic,
            discretiser=Discretiser(
                columns, default_bins=int(spec.generator.params.get("bins", DEFAULT_BINS))
            ),
            target=spec.target,
            rng=make_noise(spec.privacy).post_processing_rng(),
            settings=Settings.from_gate(spec.gate),
            only=only,
        ).to_dict()
    except Exception as exc:  # noqa: BLE001 - fail closed: no figures, every check fails
        log.warning("validation against real rows failed (%s)", type(exc).__name__)
        return {"figures": {}, "details": {}, "errors": {"evaluation": type(exc).__name__}}


def _validation_columns(spec: ReleaseSpec, paths: RunPaths) -> dict[str, Any]:
    """The public domain the checks use: the spec's, or (when the spec leaves bounds or
    categories to a DP estimate) the fitted generator's resolved columns."""
    if all(getattr(c, "declared", True) for c in spec.columns.values()):
        return dict(spec.columns)
    from synthrelease.generators import load_generator

    return dict(load_generator(paths.model).columns)


def _public_spec(spec: ReleaseSpec, paths: RunPaths) -> ReleaseSpec:
    """The spec with every undeclared domain replaced by the generator's DP estimate (a DP
    output, public): what the datasheet, the manifest, the models and the row scan use.
    Its digest stays the one of the spec as written."""
    if all(getattr(c, "declared", True) for c in spec.columns.values()):
        return spec
    digest = spec.digest()
    schema = spec.schema_.model_copy(update={"columns": _validation_columns(spec, paths)})
    public = spec.model_copy(update={"schema_": schema})
    public._digest = digest
    return public


def gate(run: PinnedRun) -> dict[str, Any]:
    """Evaluate the gate (fail closed), write the internal report; return pass/fail only."""
    from synthrelease.validators.expectations import ExpectationResult, Outcome
    from synthrelease.validators.gate import evaluate_gate
    from synthrelease.validators.report import write_internal_report

    spec, paths, run_id = run.spec, run.paths, run.run_id
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        stored = json.loads((paths.root / FIGURES_FILE).read_text())
        figures = stored["figures"]
        details, errors = dict(stored.get("details") or {}), dict(stored.get("errors") or {})
        exp = stored["expectations"]
        expectations = ExpectationResult(
            success=bool(exp["success"]),
            results=tuple(Outcome(**r) for r in exp["results"]),
            error=exp.get("error"),
        )
    except (OSError, KeyError, ValueError, TypeError):
        figures, expectations = {}, None  # fail closed: every check then fails
    verdict = evaluate_gate(
        figures=figures, expectations=expectations, gate=spec.gate, target=spec.target
    )
    privacy_file = paths.root / PRIVACY_FILE
    privacy = json.loads(privacy_file.read_text()) if privacy_file.exists() else {}
    docs = paths.report / DATA_DOCS_DIR / "index.html"
    try:
        domain = json.loads((paths.root / DOMAIN_FILE).read_text())
    except (OSError, ValueError):
        domain = {}
    report = write_internal_report(
        paths.report, run_id=run_id, spec_name=spec.name, verdict=verdict,
        figures=figures, expectations=expectations, privacy=privacy, details=details,
        errors=errors, data_docs=f"{DATA_DOCS_DIR}/index.html" if docs.exists() else None,
        domain=domain,
    )
    public = verdict.public_dict()
    public["report"] = str(report)
    _write_json(paths.root / VERDICT_FILE, public)
    return public


def _datasheet_files(
    spec: ReleaseSpec, paths: RunPaths, *, privacy: dict[str, Any], verdict: dict[str, Any]
) -> dict[str, Path]:
    """Write the public datasheet (JSON and Markdown) into the run folder; real-data
    figures go in only when the spec opts in (``gate.publish_figures``)."""
    import pandas as pd

    from synthrelease.validators import datasheet as ds

    figures = None
    if spec.gate.publish_figures:
        figures = json.loads((paths.root / FIGURES_FILE).read_text())["figures"]
    sheet = ds.build_datasheet(
        spec=spec, privacy=privacy, verdict=verdict, figures=figures,
        synthetic=pd.read_parquet(paths.synthetic),
    )
    folder = paths.root / "datasheet"
    _write_json(folder / ds.JSON_NAME, sheet)
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
    from synthrelease.firewall import Artifact, Provenance
    from synthrelease.models.release import model_entries, train_release_models

    spec, paths = run.spec, run.paths
    verdict = json.loads((paths.root / VERDICT_FILE).read_text())
    if not verdict.get("passed"):
        return None
    privacy = json.loads((paths.root / PRIVACY_FILE).read_text())
    check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
    spec = _public_spec(spec, paths)
    created = dt.datetime.now(dt.timezone.utc)
    store = ReleaseStore(spec.store.uri)
    version = store.next_version(spec.name, created)
    table_rel = f"synthetic/{spec.name}.parquet"
    files: dict[str, Artifact] = {table_rel: Artifact(paths.synthetic, Provenance.SYNTHETIC)}
    files.update(train_release_models(
        spec, table_rel=table_rel, table_path=paths.synthetic, out_dir=paths.root / "models",
        release_id=f"{spec.name}@{version}", privacy=privacy,
    ))
    generator_files = {  # opt-in only; the firewall refuses them otherwise
        f"generator/{f.name}": Artifact(f, Provenance.DP_GENERATOR)
        for f in (sorted(paths.model.iterdir()) if spec.publish.generator else []) if f.is_file()
    }
    files.update(generator_files)
    # issue 5: the public datasheet (validators/datasheet.py; no real-data figure unless opted in)
    files.update({rel: Artifact(path, Provenance.METADATA) for rel, path in _datasheet_files(
        spec, paths, privacy=privacy, verdict=verdict).items()})
    row_scan = _internal_release_checks(spec, paths, files)
    manifest = build_manifest(
        spec, privacy=privacy, gate={k: v for k, v in verdict.items() if k != "report"},
        tables=[table_rel], created=created, models=model_entries(spec),
        generator_files=sorted(generator_files), run_spec_sha256=run.spec_sha256,
    )
    store.publish(
        spec.name, files=files, manifest=manifest, created=created, readme=release_readme,
        row_scan=row_scan, allow_generator=spec.publish.generator, version=version,
        keep_last=spec.store.retention.keep_last,
    )
    release_id = f"{spec.name}@{version}"
    _write_json(paths.root / PUBLISHED_FILE, {"release_id": release_id})
    return release_id


def _internal_release_checks(spec: ReleaseSpec, paths: RunPaths, files: dict[str, Any]) -> Any:
    """Against the sensitive rows, inside the workspace: the firewall's row scan of every
    synthetic table (pass/fail), and the models' train-synthetic/test-real figures
    (written to the run's private folder only)."""
    from synthrelease.firewall import Provenance
    from synthrelease.private.model_eval import evaluate_models
    from synthrelease.private.rowscan import scan_tables

    ws = Workspace(spec.workspace.path)
    train = ws.load_table(paths.train, label=f"{spec.name}:train")
    holdout = ws.load_table(paths.holdout, label=f"{spec.name}:holdout")
    tables = {rel: a.path for rel, a in files.items() if a.provenance is Provenance.SYNTHETIC}
    row_scan = scan_tables(tables, train=train, holdout=holdout, columns=spec.columns)
    models = {
        m.name: ((paths.root / "models" / m.name / "model.onnx").read_bytes(),
                 json.loads((paths.root / "models" / m.name / "card.json").read_text()))
        for m in spec.models
    }
    if models:
        evaluate_models(models, holdout=holdout, out_dir=paths.root)
    return row_scan


def finish(run: PinnedRun) -> dict[str, Any]:
    """Settle the run in the ledger and say, in public, how it ended.

    Published: the reservation is committed and the public summary returned. Any other
    end after the first read (the gate refused, too few rows, a domain rule, a crash, the
    firewall) is *spent* and raises :class:`ChargedRunError` with one message whose only
    data-dependent part is the gate's per-check pass/fail (documented in
    ``docs/threat-model.md``); a run that failed before the gate reports every check as
    failed, as a gate that fails closed does. The reason stays in the run's folder.
    """
    spec, paths = run.spec, run.paths
    verdict = _read_json(paths.root / VERDICT_FILE)
    with open_ledger(spec) as ledger:
        if not run.failed and (paths.root / PUBLISHED_FILE).exists():
            privacy = json.loads((paths.root / PRIVACY_FILE).read_text())
            check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
            ledger.commit(run.reservation)
            return {
                "dataset": spec.name,
                "release_id": json.loads((paths.root / PUBLISHED_FILE).read_text())["release_id"],
                "run_id": run.run_id,
                "epsilon": float(privacy["epsilon"]),
                "delta": float(privacy["delta"]),
                "passed": True,
                "checks": verdict.get("checks", []),
                "report": verdict.get("report"),
            }
        if not run.failed and verdict is not None and verdict.get("passed") is False:
            note_failure(run, "step gate: refused")
        settle_failed(run, ledger)
    raise charged_error(run, verdict)


CHARGED = "failed after reading the table; nothing published"


def charged_error(run: PinnedRun, verdict: dict[str, Any] | None) -> ChargedRunError:
    """The one public message of a run that failed after reading the table: the same
    words whatever the rows hold, plus the gate's per-check bits (all failed when the
    gate did not complete)."""
    from synthrelease.validators.gate import evaluate_gate

    spec = run.spec
    if not isinstance(verdict, dict) or not isinstance(verdict.get("checks"), list):
        with private_channel(run.root):  # the gate's own log line stays private
            verdict = evaluate_gate(figures={}, expectations=None, gate=spec.gate,
                                    target=spec.target).public_dict()
    failed = [f"{c['name']} (threshold {c['threshold']})" for c in verdict["checks"]
              if not c.get("passed")]
    return ChargedRunError(
        f"release of {spec.name!r} failed after reading the table; the run was charged "
        f"(epsilon {spec.privacy.epsilon:g}, delta {spec.privacy.delta:g}) and nothing was "
        f"published. Gate checks failed: {', '.join(failed) or 'none'}. The reason is in "
        f"the private workspace: {run.root}"
    )


def note_failure(run: PinnedRun, text: str) -> None:
    """Append to the run's private failure notes (never shown in public)."""
    fd = os.open(run.root / FAILURE_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with os.fdopen(fd, "a") as fh:
        fh.write(text.rstrip("\n") + "\n")


def record_failure(run: PinnedRun, step: str, exc: BaseException) -> None:
    """Keep a step's failure (type and traceback) in the run's private folder and mark
    the run failed: later steps then do nothing, and ``finish`` settles it as spent."""
    import traceback

    note_failure(run, f"step {step}: {type(exc).__name__}\n"
                 + "".join(traceback.format_exception(exc)))
    (run.root / FAILED).touch(mode=FILE_MODE)


def _private_reason(run: PinnedRun) -> str:
    try:
        lines = (run.root / FAILURE_FILE).read_text().splitlines()
    except OSError:
        return "unknown"
    return "; ".join(line for line in lines if line.startswith("step "))[:400] or "unknown"


def settle_failed(run: PinnedRun, ledger: BudgetLedger) -> str:
    """Settle a failed run: spent once a row may have been read, else voided."""
    if (run.root / TOUCHED).exists():
        ledger.mark_spent(run.reservation, reason=CHARGED, private_reason=_private_reason(run))
        return "spent"
    ledger.void(run.reservation, reason="stopped before any row was read")
    return "voided"


def fail(run: PinnedRun, exc: BaseException) -> str:
    """Settle a run that an exception outside the steps ended. Returns its status."""
    record_failure(run, "run", exc)
    with open_ledger(run.spec) as ledger:
        if ledger.entry(run.reservation).status != "reserved":
            return ledger.entry(run.reservation).status
        return settle_failed(run, ledger)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cleanup(run: PinnedRun) -> None:
    """Remove the run's copies of sensitive rows (model and report stay, private)."""
    Workspace.remove_splits(run.paths)
