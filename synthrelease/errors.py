"""Typed error hierarchy.

Every message names the offending input (a spec key, a column, a file) and never a data
value: errors end up in terminals, Prefect logs and CI output, all outside the private
workspace.
"""

from __future__ import annotations


class SynthReleaseError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits with ``exit_code``."""

    exit_code = 2


class SpecError(SynthReleaseError):
    """The release spec is missing, not YAML, or does not validate."""


class PlanRefusedError(SpecError):
    """``run``: the spec's plan says its gate cannot be expected to pass (nothing was
    read or charged); ``--anyway`` runs it all the same."""


class SourceError(SynthReleaseError):
    """The sensitive source cannot be opened or read."""


class SchemaMismatchError(SynthReleaseError):
    """The table does not match the public schema (columns, types, declared domain)."""


class PrivacyError(SynthReleaseError):
    """An operation would break a privacy rule (pickling sensitive data, leaking rows)."""


class StepFailedError(SynthReleaseError):
    """An unexpected error inside a release step, with its details withheld.

    A third-party message can quote data, and Prefect persists a failed task's exception;
    so only the exception's type crosses, and the traceback stays in the private workspace.
    """


class BudgetExceededError(SynthReleaseError):
    """The run would push a table past its lifetime privacy budget."""

    exit_code = 3


class ConcurrentRunError(SynthReleaseError):
    """Another run of the same table holds the table lock."""

    exit_code = 5


class LedgerError(SynthReleaseError):
    """The budget ledger is unreachable or inconsistent."""


class GeneratorError(SynthReleaseError):
    """A generator cannot be built, fitted or loaded."""


class AuditError(SynthReleaseError):
    """The privacy audit could not run or its inputs are malformed (the gate fails it)."""


class GateFailedError(SynthReleaseError):
    """The release gate refused the synthetic output (nothing is published)."""

    exit_code = 4


class StoreError(SynthReleaseError):
    """The release store cannot be read or written."""


class ReleaseNotFoundError(StoreError):
    """No release of that name / version exists."""


class IntegrityError(StoreError):
    """A release file does not match the hash in its manifest."""


class WithdrawnError(ReleaseNotFoundError):
    """The release version was withdrawn by its custodian (see the dataset's history)."""


class FirewallError(PrivacyError):
    """The leak firewall refused an artifact: no provenance, a forbidden file type, a
    model not reproducible from the synthetic table, or rows copied from the real table.
    Nothing was published."""

    exit_code = 4


class ModelError(SynthReleaseError):
    """A downstream model cannot be trained, exported or loaded."""


class ChargedRunError(GateFailedError):
    """A run failed after it read the table (the gate refused, or anything else). Its
    public message is the same whatever the rows hold but for the gate's documented
    per-check bits; where and why it failed stays in the run's private folder, and the
    reservation is kept as spent. Exit code 4, like any refusal."""


class BudgetPinnedError(LedgerError):
    """The spec states a lifetime budget other than the one pinned in the ledger (change
    it only with ``synthrelease budget set``)."""
