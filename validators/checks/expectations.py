"""The Great Expectations suite built from the public schema, on the synthetic table
only (``expectations.py``). The pipeline's check step runs it beside the real-data
checks; the gate passes it only on an explicit success."""

from __future__ import annotations

from synthrelease.validators.checks.base import SuiteCheck

CHECK = SuiteCheck(
    name="expectations",
    default=True,
    description="the Great Expectations suite built from the public schema passes on the "
    "synthetic table",
    uses=("expectations.py",),
)
