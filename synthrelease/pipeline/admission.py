"""Before any row is read: preflight (headers, declared metadata, the ledger) and the
budget reservation; and the one check of a fit's spend against its reservation.

``reserve`` records the spend before any row is read. ``check_spend`` is the one
accountant route: every generator reports its spend as budget lines, and the lines are
added up against the reservation after the fit, before publishing and before the
ledger commits, failing closed.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from synthrelease.errors import (
    LedgerError,
    PrivacyError,
)
from synthrelease.generators import build_generator
from synthrelease.generators.accounting import ACCOUNTANT, PrivacyReport, cdp_eps
from synthrelease.ledger import open_ledger
from synthrelease.pipeline.context import (
    RUN_FILE,
    PinnedRun,
    check_noise,
    write_json,
)
from synthrelease.private.sources import (
    check_columns,
)
from synthrelease.spec import ReleaseSpec
from synthrelease.store import ReleaseStore

log = logging.getLogger(__name__)


def preflight(spec: ReleaseSpec) -> None:
    """Cheap checks that read no rows: headers match the schema, the generator and its
    parameters are valid, the noise is secure (seeded only in tests), the ledger's pinned
    budget matches and can cover the run."""

    check_noise(spec)
    check_columns(spec.source, spec.columns)
    if spec.holdout.source is not None:
        check_columns(spec.holdout.source, spec.columns)
    build_generator(
        spec.generator,
        spec.columns,
        epsilon=spec.privacy.epsilon,
        delta=spec.privacy.delta,
        target=spec.target,  # AIM's default workload (issue 4); ignored by the others
        domain_share=spec.privacy.domain_share,  # DP domains (dpsgd); ignored by the others
    )
    ReleaseStore(spec.store.uri)
    check_budget(spec)


def check_budget(spec: ReleaseSpec) -> None:
    """Refuse early if the spec's budget is not the ledger's pinned one or cannot cover
    this run (``reserve`` checks again, locked)."""
    with open_ledger(spec) as ledger:
        ledger.check(
            spec.name,
            epsilon=spec.privacy.epsilon,
            delta=spec.privacy.delta,
            budget=spec.privacy.budget,
        )


def reserve(run: PinnedRun) -> str:
    """Record the spend in the ledger before any row is read; refuse past the table's
    pinned lifetime budget. The reservation id is added to the run's ``run.json``."""
    spec = run.spec
    meta = json.loads((run.root / RUN_FILE).read_text())
    if meta.get("reservation"):
        raise LedgerError(f"run {run.run_id} already holds a reservation")
    with open_ledger(spec) as ledger:
        rid = ledger.reserve(
            spec.name,
            epsilon=spec.privacy.epsilon,
            delta=spec.privacy.delta,
            budget=spec.privacy.budget,
            run_id=run.run_id,
        )
        try:
            write_json(run.root / RUN_FILE, {**meta, "reservation": rid})
        except OSError:
            ledger.void(rid, reason="run folder not writable; no row was read")
            raise
    log.info(
        "budget reserved",
        extra={"dataset": spec.name, "run_id": run.run_id, "epsilon": spec.privacy.epsilon},
    )
    return rid


def check_spend(privacy: dict[str, Any], *, epsilon: float, delta: float) -> PrivacyReport:
    """The one accountant route: a fit's budget lines against its reservation.

    The lines are re-added (zCDP: rho adds up; the epsilon is recomputed from the total),
    and the spend must not exceed the reserved (epsilon, delta). Fails closed: a run over
    its reservation is never published (and stays spent).
    """
    report = PrivacyReport.from_dict(privacy)
    spent = report.epsilon
    if report.accountant == ACCOUNTANT:
        spent = max(
            spent, cdp_eps(rho=math.fsum(line.rho for line in report.lines), delta=report.delta)
        )
    if not (
        math.isfinite(spent)
        and spent <= epsilon * (1 + 1e-9)
        and report.delta <= delta * (1 + 1e-9)
    ):
        raise PrivacyError(
            "the fitted generator's budget lines exceed this run's reservation; "
            "nothing is published"
        )
    return report
