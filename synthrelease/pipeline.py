"""The release, step by step, as plain functions (no Prefect here).

``flows/release.py`` sequences these as tasks. Steps take the spec and a run id and
hand on *references* (paths in the private workspace) and public values (the DP
accounting, the gate's pass/fail): no frame and no real-data figure ever crosses a step
boundary, so none can land in a Prefect result, cache, artifact or log.

Ledger rules: ``reserve`` records the spend before any row is read. A run that stops
before a DP mechanism saw the rows (schema/domain mismatch) voids its reservation; once
``train`` has marked the run as *touched*, any failure settles it as spent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthrelease.errors import GateFailedError, LedgerError
from synthrelease.ledger import BudgetLedger
from synthrelease.manifest import build_manifest, release_readme
from synthrelease.private.workspace import FILE_MODE, RunPaths, Workspace, tighten
from synthrelease.spec import ReleaseSpec
from synthrelease.store import ReleaseStore

log = logging.getLogger(__name__)
TOUCHED = "touched"
PRIVACY_FILE = "privacy.json"
FIGURES_FILE = "figures.json"
VERDICT_FILE = "verdict.json"


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports publicly."""

    release_id: str | None
    epsilon: float
    delta: float
    passed: bool
    report: str


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
    return Discretiser(spec.columns, default_bins=bins)


# ---------------------------------------------------------------------------- steps
def preflight(spec: ReleaseSpec) -> None:
    """Cheap checks that read no rows: headers match the schema, the generator exists."""
    from synthrelease.generators import build_generator
    from synthrelease.private.sources import check_columns

    check_columns(spec.source, spec.columns)
    if spec.holdout.source is not None:
        check_columns(spec.holdout.source, spec.columns)
    build_generator(
        spec.generator, spec.columns, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta
    )
    ReleaseStore(spec.store.uri)
    check_budget(spec)


def check_budget(spec: ReleaseSpec) -> None:
    """Refuse early if the budget cannot cover this run (``reserve`` checks again, locked)."""
    from synthrelease.errors import BudgetExceededError

    ledger = open_ledger(spec)
    try:
        eps, delta = ledger.spent(spec.name)
    finally:
        ledger.close()
    budget = spec.privacy.budget
    if eps + spec.privacy.epsilon > budget.epsilon + 1e-12 or delta + spec.privacy.delta > budget.delta + 1e-12:
        raise BudgetExceededError(
            f"budget of table {spec.name!r} would be exceeded: spent epsilon {eps:.4g} of "
            f"{budget.epsilon:.4g} and delta {delta:.3g} of {budget.delta:.3g}; this run asks "
            f"epsilon {spec.privacy.epsilon:.4g}, delta {spec.privacy.delta:.3g}. Nothing was run."
        )


def reserve(spec: ReleaseSpec, run_id: str) -> str:
    """Record the spend in the ledger before any row is read; refuse past the budget."""
    ledger = open_ledger(spec)
    try:
        rid = ledger.reserve(
            spec.name,
            epsilon=spec.privacy.epsilon,
            delta=spec.privacy.delta,
            budget=spec.privacy.budget,
            run_id=run_id,
        )
    finally:
        ledger.close()
    log.info("budget reserved", extra={"dataset": spec.name, "run_id": run_id,
                                       "epsilon": spec.privacy.epsilon})
    return rid


def train(spec: ReleaseSpec, run_id: str) -> dict[str, Any]:
    """Load, check the domain, split, fit the DP generator. Returns the DP accounting."""
    from synthrelease.generators import build_generator
    from synthrelease.generators.noise import make_noise
    from synthrelease.private.sources import check_domain, load_table
    from synthrelease.private.workspace import split_table

    paths = run_paths(spec, run_id)
    ws = Workspace(spec.workspace.path)
    noise = make_noise(spec.privacy)
    discretiser = _discretiser(spec)
    table = load_table(spec.source, spec.columns, label=spec.name)
    check_domain(table, discretiser)
    if spec.holdout.source is not None:
        holdout = load_table(spec.holdout.source, spec.columns, label=f"{spec.name}:holdout")
        check_domain(holdout, discretiser)
        train_part = table
    else:
        train_part, holdout = split_table(
            table, fraction=float(spec.holdout.fraction or 0.2), rng=noise.post_processing_rng()
        )
    ws.save_table(train_part, paths.train)
    ws.save_table(holdout, paths.holdout)
    generator = build_generator(
        spec.generator, spec.columns, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta
    )
    (paths.root / TOUCHED).touch(mode=FILE_MODE)  # from here on, failure spends the budget
    log.info("training", extra={"generator": spec.generator.name, "run_id": run_id})
    report = generator.fit(train_part, noise=noise)
    tighten(generator.save(paths.model))
    privacy = report.to_dict()
    _write_json(paths.root / PRIVACY_FILE, privacy)
    return privacy


def sample(spec: ReleaseSpec, run_id: str) -> str:
    """Sample ``synthetic_rows`` rows from the fitted generator (post-processing)."""
    from synthrelease.generators import load_generator
    from synthrelease.generators.noise import make_noise

    paths = run_paths(spec, run_id)
    generator = load_generator(paths.model)
    rng = make_noise(spec.privacy).post_processing_rng()
    synthetic = generator.sample(spec.synthetic_rows, rng=rng)
    synthetic.to_parquet(paths.synthetic, index=False)
    tighten(paths.synthetic)
    log.info("sampled", extra={"rows": spec.synthetic_rows, "run_id": run_id})
    return str(paths.synthetic)


def check(spec: ReleaseSpec, run_id: str) -> str:
    """Run the checks; figures go to the private report only. Returns the report path."""
    import pandas as pd

    from synthrelease.generators.noise import make_noise
    from synthrelease.validators.expectations import run_expectations
    from synthrelease.validators.real import real_data_figures

    paths = run_paths(spec, run_id)
    ws = Workspace(spec.workspace.path)
    synthetic = pd.read_parquet(paths.synthetic)
    expectations = run_expectations(synthetic, spec.columns, expected_rows=spec.synthetic_rows)
    figures = real_data_figures(
        train=ws.load_table(paths.train, label=f"{spec.name}:train"),
        holdout=ws.load_table(paths.holdout, label=f"{spec.name}:holdout"),
        synthetic=synthetic,
        discretiser=_discretiser(spec),
        rng=make_noise(spec.privacy).post_processing_rng(),
    )
    _write_json(paths.root / FIGURES_FILE, {"figures": figures, "expectations": expectations.to_dict()})
    return str(paths.root / FIGURES_FILE)


def gate(spec: ReleaseSpec, run_id: str) -> dict[str, Any]:
    """Evaluate the gate (fail closed), write the internal report; return pass/fail only."""
    from synthrelease.validators.expectations import ExpectationResult, Outcome
    from synthrelease.validators.gate import evaluate_gate
    from synthrelease.validators.report import write_internal_report

    paths = run_paths(spec, run_id)
    try:
        stored = json.loads((paths.root / FIGURES_FILE).read_text())
        figures = stored["figures"]
        exp = stored["expectations"]
        expectations = ExpectationResult(
            success=bool(exp["success"]),
            results=tuple(Outcome(**r) for r in exp["results"]),
            error=exp.get("error"),
        )
    except (OSError, KeyError, ValueError, TypeError):
        figures, expectations = {}, None  # fail closed: every check then fails
    verdict = evaluate_gate(figures=figures, expectations=expectations, gate=spec.gate)
    privacy_file = paths.root / PRIVACY_FILE
    privacy = json.loads(privacy_file.read_text()) if privacy_file.exists() else {}
    report = write_internal_report(
        paths.report, run_id=run_id, spec_name=spec.name, verdict=verdict,
        figures=figures, expectations=expectations, privacy=privacy,
    )
    public = verdict.public_dict()
    public["report"] = str(report)
    _write_json(paths.root / VERDICT_FILE, public)
    return public


def publish(spec: ReleaseSpec, run_id: str) -> str:
    """Publish the synthetic table if (and only if) the gate passed. Returns the release id."""
    paths = run_paths(spec, run_id)
    verdict = json.loads((paths.root / VERDICT_FILE).read_text())
    if not verdict.get("passed"):
        failed = [
            f"{c['name']} (threshold {c['threshold']})" for c in verdict.get("checks", [])
            if not c.get("passed")
        ]
        raise GateFailedError(
            f"gate failed for {spec.name!r}: {', '.join(failed) or 'no checks ran'}; nothing "
            f"was published. Internal report: {verdict.get('report')}"
        )
    privacy = json.loads((paths.root / PRIVACY_FILE).read_text())
    created = dt.datetime.now(dt.timezone.utc)
    table_rel = f"synthetic/{spec.name}.parquet"
    manifest = build_manifest(
        spec, privacy=privacy, gate={k: v for k, v in verdict.items() if k != "report"},
        tables=[table_rel], created=created,
    )
    version = ReleaseStore(spec.store.uri).publish(
        spec.name, files={table_rel: paths.synthetic}, manifest=manifest, created=created,
        readme=release_readme,
    )
    return f"{spec.name}@{version}"


def complete(spec: ReleaseSpec, reservation: str) -> None:
    ledger = open_ledger(spec)
    try:
        ledger.commit(reservation)
    finally:
        ledger.close()


def fail(spec: ReleaseSpec, run_id: str, reservation: str, exc: BaseException) -> str:
    """Settle a failed run: spent once the data was touched, else voided. Returns status."""
    touched = (Workspace(spec.workspace.path).root / "runs" / run_id / TOUCHED).exists()
    reason = f"{type(exc).__name__}" + (" after training started" if touched else " before training")
    ledger = open_ledger(spec)
    try:
        if touched:
            ledger.mark_spent(reservation, reason=reason)
            return "spent"
        ledger.void(reservation, reason=reason)
        return "voided"
    finally:
        ledger.close()


def cleanup(spec: ReleaseSpec, run_id: str) -> None:
    """Remove the run's copies of sensitive rows (model and report stay, private)."""
    Workspace.remove_splits(run_paths(spec, run_id))
