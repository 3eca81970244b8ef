"""The check step (whole, or in parts for parallel flows) and the gate.

The checks are the one step that reads real rows for validation. Figures go to
``figures.json`` in the run's private folder (the gate reads them there; none crosses a
task boundary); the gate returns only its public pass/fail per check.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from synthrelease.errors import (
    StepFailedError,
)
from synthrelease.generators import audit_spec, build_generator, load_generator
from synthrelease.generators.base import DPGenerator
from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
from synthrelease.generators.noise import make_noise
from synthrelease.pipeline.context import (
    AUDIT_FILE,
    CHECKS_DIR,
    DATA_DOCS_DIR,
    DOMAIN_FILE,
    FIGURES_FILE,
    PRIVACY_FILE,
    VERDICT_FILE,
    PinnedRun,
    write_json,
)
from synthrelease.private.workspace import RunPaths, Workspace
from synthrelease.spec import ReleaseSpec
from synthrelease.validators.audit import audit_generator
from synthrelease.validators.evaluation import CHECKS, Settings
from synthrelease.validators.expectations import (
    ExpectationResult,
    Outcome,
    run_expectations,
)
from synthrelease.validators.gate import Verdict, evaluate_gate
from synthrelease.validators.real import evaluate_against_real
from synthrelease.validators.report import write_internal_report

log = logging.getLogger(__name__)


def check(run: PinnedRun) -> Path:
    """Run every check: the one step that reads real rows for validation (utility,
    privacy attacks, copies) plus the GX suite on the synthetic table, with Data Docs in
    the private report folder. Figures go to ``figures.json`` in the private workspace
    (the gate reads them there; none crosses a task boundary). Returns that file's path.
    :func:`check_part` and :func:`merge_checks` do the same in parts (parallel flows).
    """
    spec, paths = run.spec, run.paths
    synthetic, columns = _check_inputs(spec, paths)
    payload = {
        **_evaluate(spec, paths, synthetic, columns, only=None),
        "expectations": _expectations(spec, paths, synthetic, columns),
    }
    write_json(paths.root / AUDIT_FILE, _audit(spec, paths, synthetic))
    write_json(paths.root / FIGURES_FILE, payload)
    return paths.root / FIGURES_FILE


def check_parts(spec: ReleaseSpec) -> tuple[str, ...]:
    """The independent parts of the check step: the GX suite, the privacy audit, then
    each real-data check."""

    return (
        "expectations",
        "audit",
        *(c for c in CHECKS if c != "tstr" or spec.target is not None),
    )


def check_part(run: PinnedRun, part: str) -> Path:
    """One part of the check step (see :func:`check_parts`), into the run's private
    ``checks/<part>.json``; a part's figures equal those of the whole :func:`check`."""
    spec, paths = run.spec, run.paths
    if part not in check_parts(spec):
        raise StepFailedError(f"unknown check part {part!r}; parts: {', '.join(check_parts(spec))}")
    synthetic, columns = _check_inputs(spec, paths)
    if part == "expectations":
        payload: dict[str, Any] = {"expectations": _expectations(spec, paths, synthetic, columns)}
    elif part == "audit":
        payload = {"audit": _audit(spec, paths, synthetic)}
    else:
        payload = _evaluate(spec, paths, synthetic, columns, only=[part])
    out = paths.root / CHECKS_DIR / f"{part}.json"
    write_json(out, payload)
    return out


def merge_checks(run: PinnedRun) -> Path:
    """Merge the parts into ``figures.json``, failing closed: a missing or unreadable
    part records an error and leaves its figures out (the gate then fails them)."""
    spec, paths = run.spec, run.paths
    merged: dict[str, Any] = {"figures": {}, "details": {}, "errors": {}, "seconds": {}}
    merged["expectations"] = {
        "success": False,
        "results": [],
        "error": "the expectations part did not run",
    }
    for part in check_parts(spec):
        try:
            payload = json.loads((paths.root / CHECKS_DIR / f"{part}.json").read_text())
        except (OSError, ValueError):
            merged["errors"][part] = "MissingPart"
            continue
        if part == "expectations":
            merged["expectations"] = payload["expectations"]
            continue
        if part == "audit":  # public: a file of its own (the gate fails a missing one)
            write_json(paths.root / AUDIT_FILE, payload["audit"])
            continue
        for key in ("figures", "details", "errors", "seconds"):
            merged[key].update(payload.get(key) or {})
    write_json(paths.root / FIGURES_FILE, merged)
    return paths.root / FIGURES_FILE


def _check_inputs(spec: ReleaseSpec, paths: RunPaths) -> tuple[Any, dict[str, Any]]:
    """The synthetic table and the public domain the checks use (read once per step)."""
    import pandas as pd

    return pd.read_parquet(paths.synthetic), validation_columns(spec, paths)


def _expectations(
    spec: ReleaseSpec, paths: RunPaths, synthetic: Any, columns: dict[str, Any]
) -> dict[str, Any]:
    """The GX suite on the synthetic table (Data Docs in the private report folder)."""

    return run_expectations(
        synthetic,
        columns,
        expected_rows=spec.synthetic_rows,
        data_docs=paths.report / DATA_DOCS_DIR,
    ).to_dict()


def _evaluate(
    spec: ReleaseSpec,
    paths: RunPaths,
    synthetic: Any,
    columns: dict[str, Any],
    *,
    only: list[str] | None,
) -> dict[str, Any]:
    """The real-data checks (all, or ``only`` these), failing closed on any error."""

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
            train_rows=_train_rows(paths),
        ).to_dict()
    except Exception as exc:
        log.warning("validation against real rows failed (%s)", type(exc).__name__)
        return {"figures": {}, "details": {}, "errors": {"evaluation": type(exc).__name__}}


def _train_rows(paths: RunPaths) -> int | None:
    """The training part's row count (private), where the checks read a sample of it."""
    try:
        return int(json.loads((paths.root / DOMAIN_FILE).read_text())["rows"]["train"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _audit(spec: ReleaseSpec, paths: RunPaths, synthetic: Any) -> dict[str, Any]:
    """The one-run privacy audit on the synthetic table (public; no real row is read):
    the release's generator, parameters, domain and epsilon fitted once on the synthetic
    rows plus canaries. Fails closed: an error is recorded by its type only."""
    try:
        fitted = load_generator(paths.model)
        columns = getattr(fitted, "resolved_columns", fitted.columns)  # DP edges, DP domains
        generator = audit_spec(spec.generator)

        def make() -> DPGenerator:
            return build_generator(
                generator,
                columns,
                epsilon=spec.privacy.epsilon,
                delta=spec.privacy.delta,
                target=spec.target,
            )

        noise = make_noise(spec.privacy)
        result = audit_generator(
            make,
            synthetic,
            noise=noise,
            rng=noise.post_processing_rng(),
            max_canaries=spec.gate.audit_canaries,
        )
        log.info(
            "privacy audit: epsilon lower bound %.3g of %.3g (%d of %d guesses right)",
            result.epsilon_lower_bound,
            result.epsilon,
            result.correct,
            result.guesses,
        )
        return result.to_dict()
    except Exception as exc:
        log.warning("the privacy audit failed (%s)", type(exc).__name__)
        return {"error": type(exc).__name__}


def validation_columns(spec: ReleaseSpec, paths: RunPaths) -> dict[str, Any]:
    """The public domain the checks use: the spec's, or (when the spec leaves bounds or
    categories to a DP estimate) the fitted generator's resolved columns."""
    if all(getattr(c, "declared", True) for c in spec.columns.values()):
        return dict(spec.columns)

    return dict(load_generator(paths.model).columns)


def gate(run: PinnedRun) -> Verdict:
    """Evaluate the gate (fail closed) and write the internal report (private, with the
    figures) and ``verdict.json`` (public: pass/fail per check). Returns the verdict."""

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
    try:
        audit: dict[str, Any] | None = json.loads((paths.root / AUDIT_FILE).read_text())
    except (OSError, ValueError):
        audit = None  # fail closed
    verdict = evaluate_gate(
        figures=figures,
        expectations=expectations,
        gate=spec.gate,
        target=spec.target,
        audit=audit,
        epsilon=spec.privacy.epsilon,
    )
    privacy_file = paths.root / PRIVACY_FILE
    privacy = json.loads(privacy_file.read_text()) if privacy_file.exists() else {}
    docs = paths.report / DATA_DOCS_DIR / "index.html"
    try:
        domain = json.loads((paths.root / DOMAIN_FILE).read_text())
    except (OSError, ValueError):
        domain = {}
    report = write_internal_report(
        paths.report,
        run_id=run_id,
        spec_name=spec.name,
        verdict=verdict,
        figures=figures,
        expectations=expectations,
        privacy=privacy,
        details=details,
        errors=errors,
        data_docs=f"{DATA_DOCS_DIR}/index.html" if docs.exists() else None,
        domain=domain,
    )
    public = verdict.public_dict()
    public["report"] = str(report)
    write_json(paths.root / VERDICT_FILE, public)
    return verdict
