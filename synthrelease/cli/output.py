"""What the command line prints: one line at a time on stdout; the default store."""

from __future__ import annotations

import os
import sys

DEFAULT_STORE_ENV = "SYNTHRELEASE_STORE"


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def default_store() -> str:
    return os.environ.get(DEFAULT_STORE_ENV, "releases")
