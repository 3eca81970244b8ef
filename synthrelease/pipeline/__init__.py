"""The release, step by step, as plain functions over a pinned run (no Prefect here).

``context`` pins a run (the frozen spec and its folder), ``admission`` does what comes
before any row is read (preflight, the reservation) and checks a fit's spend, ``fit``
trains and samples, ``checks`` validates and gates, ``publish`` publishes, ``settle``
ends the run in the ledger and in public. :mod:`synthrelease.run` runs these steps in
order, each one that may read rows inside the run's private channel; the Prefect flows
wrap the same functions as tasks. Steps hand on *references* (the run's folder) and
public values only.
"""

from synthrelease.ledger import open_ledger
from synthrelease.pipeline.admission import (
    check_budget,
    check_spend,
    preflight,
    reserve,
)
from synthrelease.pipeline.checks import (
    check,
    check_part,
    check_parts,
    gate,
    merge_checks,
    validation_columns,
)
from synthrelease.pipeline.context import (
    AUDIT_FILE,
    CHECKS_DIR,
    DATA_DOCS_DIR,
    DOMAIN_FILE,
    FAILED,
    FAILURE_FILE,
    FIGURES_FILE,
    PRIVACY_FILE,
    PUBLISHED_FILE,
    RUN_FILE,
    SPEC_FILE,
    TEST_NOISE_ENV,
    TOUCHED,
    VERDICT_FILE,
    PinnedRun,
    check_noise,
    new_run_id,
    pin,
    run_paths,
)
from synthrelease.pipeline.fit import sample, train
from synthrelease.pipeline.publish import publish
from synthrelease.pipeline.settle import (
    CHARGED,
    ReleaseSummary,
    charged_error,
    cleanup,
    fail,
    finish,
    note_failure,
    record_failure,
    settle_failed,
)

__all__ = [
    "CHARGED",
    "CHECKS_DIR",
    "DATA_DOCS_DIR",
    "DOMAIN_FILE",
    "FAILED",
    "FAILURE_FILE",
    "AUDIT_FILE",
    "FIGURES_FILE",
    "PRIVACY_FILE",
    "PUBLISHED_FILE",
    "RUN_FILE",
    "SPEC_FILE",
    "TEST_NOISE_ENV",
    "TOUCHED",
    "VERDICT_FILE",
    "PinnedRun",
    "ReleaseSummary",
    "charged_error",
    "check",
    "check_budget",
    "check_noise",
    "check_part",
    "check_parts",
    "check_spend",
    "cleanup",
    "fail",
    "finish",
    "gate",
    "merge_checks",
    "new_run_id",
    "note_failure",
    "open_ledger",
    "pin",
    "preflight",
    "publish",
    "record_failure",
    "reserve",
    "run_paths",
    "sample",
    "settle_failed",
    "train",
    "validation_columns",
]
