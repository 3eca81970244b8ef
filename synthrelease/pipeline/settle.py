"""How a run ends: committed when published, else spent once a row was read, with one
public message whatever the rows hold (but for the gate's documented bits).

A step that may read rows records its failure here (``record_failure``), privately; the
later steps then do nothing and ``finish`` speaks. See ``docs/threat-model.md``.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

from synthrelease.errors import ChargedRunError
from synthrelease.ledger import BudgetLedger, open_ledger
from synthrelease.log import private_channel
from synthrelease.owner_only import FILE_MODE
from synthrelease.pipeline.admission import check_spend
from synthrelease.pipeline.context import (
    FAILED,
    FAILURE_FILE,
    PRIVACY_FILE,
    PUBLISHED_FILE,
    TOUCHED,
    VERDICT_FILE,
    PinnedRun,
    read_json,
)
from synthrelease.private.workspace import Workspace
from synthrelease.validators.gate import evaluate_gate

log = logging.getLogger(__name__)
CHARGED = "failed after reading the table; nothing published"


@dataclass(frozen=True)
class ReleaseSummary:
    """What a published run says in public: DP values, the release, the gate's bits."""

    dataset: str
    release_id: str
    run_id: str
    epsilon: float
    delta: float
    checks: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    report: str | None = None  # the internal report's path, in the private workspace
    passed: bool = True  # a summary exists only for a published run


def finish(run: PinnedRun) -> ReleaseSummary:
    """Settle the run in the ledger and say, in public, how it ended.

    Published: the reservation is committed and the public summary returned. Any other
    end after the first read (the gate refused, too few rows, a domain rule, a crash, the
    firewall) is *spent* and raises :class:`ChargedRunError` with one message whose only
    data-dependent part is the gate's per-check pass/fail (documented in
    ``docs/threat-model.md``); a run that failed before the gate reports every check as
    failed, as a gate that fails closed does. The reason stays in the run's folder.
    """
    spec, paths = run.spec, run.paths
    verdict = read_json(paths.root / VERDICT_FILE)
    with open_ledger(spec) as ledger:
        if not run.failed and (paths.root / PUBLISHED_FILE).exists():
            privacy = json.loads((paths.root / PRIVACY_FILE).read_text())
            check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
            ledger.commit(run.reservation)
            return ReleaseSummary(
                dataset=spec.name,
                release_id=json.loads((paths.root / PUBLISHED_FILE).read_text())["release_id"],
                run_id=run.run_id,
                epsilon=float(privacy["epsilon"]),
                delta=float(privacy["delta"]),
                checks=tuple(verdict.get("checks", [])),
                report=verdict.get("report"),
            )
        if not run.failed and verdict is not None and verdict.get("passed") is False:
            note_failure(run, "step gate: refused")
        settle_failed(run, ledger)
    raise charged_error(run, verdict)


def charged_error(run: PinnedRun, verdict: dict[str, Any] | None) -> ChargedRunError:
    """The one public message of a run that failed after reading the table: the same
    words whatever the rows hold, plus the gate's per-check bits (all failed when the
    gate did not complete)."""

    spec = run.spec
    if not isinstance(verdict, dict) or not isinstance(verdict.get("checks"), list):
        with private_channel(run.root):  # the gate's own log line stays private
            verdict = evaluate_gate(
                figures={}, expectations=None, gate=spec.gate, target=spec.target
            ).public_dict()
    failed = [
        f"{c['name']} (threshold {c['threshold']})"
        for c in verdict["checks"]
        if not c.get("passed")
    ]
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

    note_failure(
        run, f"step {step}: {type(exc).__name__}\n" + "".join(traceback.format_exception(exc))
    )
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


def cleanup(run: PinnedRun) -> None:
    """Remove the run's copies of sensitive rows (model and report stay, private)."""
    Workspace.remove_splits(run.paths)
