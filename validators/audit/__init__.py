"""The one-run privacy audit (issue 15): an empirical lower bound on the epsilon of the
release's generator, measured on a public surrogate; see :mod:`.run`."""

from synthrelease.validators.audit.run import (
    CONFIDENCE,
    AuditResult,
    audit_generator,
    public_audit,
)

__all__ = ["CONFIDENCE", "AuditResult", "audit_generator", "public_audit"]
