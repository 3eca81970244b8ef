"""`SensitiveTable`: the wrapper that sensitive rows travel in.

It shows no rows in ``repr``/``str``, refuses to be pickled (so it cannot reach a Prefect
result, a cache, a multiprocessing queue or a release), and hands its frame out only
through :meth:`SensitiveTable.reveal`, whose callers are few and named: ``reveal``
refuses any module of the library that is not in ``TRUSTED_READERS`` (checked at run
time on the caller's module, so ``getattr`` cannot dodge it; ``tests/test_boundary.py``
also scans the sources).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import pandas as pd

from synthrelease.errors import PrivacyError

# Modules allowed to call ``reveal()``: loading, the split, DP measurement/training and
# the internal checks against real rows. Checked by tests/test_boundary.py.
TRUSTED_READERS = frozenset(
    {
        "synthrelease.private.table",
        "synthrelease.private.sources",
        "synthrelease.private.workspace",
        "synthrelease.private.draft",
        "synthrelease.private.rowscan",
        "synthrelease.private.database",  # counting and the row scan inside PostgreSQL
        "synthrelease.private.model_eval",
        "synthrelease.generators.marginal.data",  # MST's, AIM's and DP edges' row encoder
        "synthrelease.generators.dpsgd.generator",
        "synthrelease.generators.dp_domain",
        "synthrelease.validators.real",
    }
)
LIBRARY = "synthrelease."  # modules under this name are held to TRUSTED_READERS


class SensitiveTable:
    """A table of sensitive rows. Never printed, never pickled, never published."""

    __slots__ = ("_frame", "_label")
    # set once, through object.__setattr__, in __init__ (the class refuses __setattr__)
    _frame: pd.DataFrame
    _label: str

    def __init__(self, frame: pd.DataFrame, *, label: str) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError("SensitiveTable wraps a pandas DataFrame")
        object.__setattr__(self, "_frame", frame)
        object.__setattr__(self, "_label", label)

    @property
    def label(self) -> str:
        return self._label

    @property
    def columns(self) -> list[str]:
        """Column names are public (they are declared in the spec)."""
        return [str(c) for c in self._frame.columns]

    def reveal(self) -> pd.DataFrame:
        """The rows themselves. Only for the modules in ``TRUSTED_READERS`` (a library
        module outside it gets a :class:`PrivacyError`; code outside the library, such
        as the custodian's own scripts and the tests, is the custodian's business)."""
        caller = str(sys._getframe(1).f_globals.get("__name__", ""))
        if caller.startswith(LIBRARY) and caller not in TRUSTED_READERS:
            raise PrivacyError(f"{caller} is not a trusted reader of sensitive rows")
        return self._frame

    def __len__(self) -> int:
        # The exact row count is sensitive: refuse the implicit len() so that it cannot
        # slip into a sample size or a log line by accident.
        raise PrivacyError("the row count of a sensitive table is private; use a DP estimate")

    def __repr__(self) -> str:
        return f"<SensitiveTable {self._label!r}: {len(self.columns)} columns, rows hidden>"

    __str__ = __repr__

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SensitiveTable is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError(
            f"refusing to pickle sensitive table {self._label!r}: pass a reference "
            "(its workspace path), never the rows"
        )

    def __getstate__(self) -> NoReturn:
        raise PrivacyError(f"refusing to serialise sensitive table {self._label!r}")

    def __copy__(self) -> SensitiveTable:
        return self

    def __deepcopy__(self, memo: dict) -> SensitiveTable:
        return self
