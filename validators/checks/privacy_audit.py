"""The one-run privacy audit (``validators/audit/``), run by the pipeline's check step on
the synthetic table (a public surrogate: no real row is read). The gate passes it only
when the audit ran and its epsilon lower bound (95% confidence) is at or below the
release's own epsilon."""

from __future__ import annotations

from synthrelease.validators.checks.base import SuiteCheck

CHECK = SuiteCheck(
    name="privacy_audit",
    default=True,
    description="one-run privacy audit: the generator refitted on the synthetic table plus "
    "canaries; the empirical epsilon lower bound (95%) must not exceed the release's epsilon",
    uses=("audit/run.py", "audit/attacks.py", "audit/bound.py"),
)
