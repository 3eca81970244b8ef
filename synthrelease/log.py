"""Structured logging: ``time level logger: event key=value ...`` on stderr.

Library code logs with ``logging.getLogger(__name__)`` and passes facts in ``extra``;
nothing logs data values (rows, real-data counts, extremes or figures).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_STANDARD = set(vars(logging.LogRecord("x", 0, "", 0, "", (), None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            base += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return base


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be swapped or captured)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(*, verbose: bool = False) -> None:
    handler = _StderrHandler()
    handler.setFormatter(
        KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger("synthrelease")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


# ---------------------------------------------------------------------------- private channel
PRIVATE_LOG = "private.log"
_private_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "synthrelease_private_log", default=None
)


class _PrivateRouter(logging.Filter):
    """Installed on every handler of the ``synthrelease`` logger while a run step that
    reads rows is active: a record logged in that context goes to the run's private log
    file (0600, in the private workspace) and to no other handler (stderr, Prefect's API
    handler). Records from other contexts pass unchanged."""

    _lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        path = _private_path.get()
        if path is None:
            return True
        if getattr(record, "_synthrelease_private_written", False):
            return False
        record._synthrelease_private_written = True
        line = _FORMATTER.format(record) + "\n"
        with self._lock:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line)
        return False


_FORMATTER = KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
_ROUTER = _PrivateRouter()


class _Catch(logging.Handler):
    """A handler that only exists so that the router sees records even when the
    ``synthrelease`` logger has no other handler (they would otherwise reach the root)."""

    def emit(self, record: logging.LogRecord) -> None:  # the router has written it
        pass


class _Active:
    """How many private channels are open (threads), and the logger's own propagate."""

    count = 0
    propagate = False


_active = _Active()
_active_lock = threading.Lock()


@contextlib.contextmanager
def private_channel(folder: Path) -> Iterator[Path]:
    """While the body runs (in this thread or task context), everything logged under
    ``synthrelease`` (library code, generators, validators) goes to ``folder/private.log``
    only: never to stderr, Prefect's API log handler or the root logger. Run steps that
    read sensitive rows run inside it, so that what a step logs cannot depend on the rows
    in any public channel. Nested and concurrent uses (threads) are counted."""
    path = Path(folder) / PRIVATE_LOG
    logger = logging.getLogger("synthrelease")
    token = _private_path.set(path)
    with _active_lock:
        if _active.count == 0:
            _active.propagate = logger.propagate
            catch = _Catch()
            catch.addFilter(_ROUTER)
            logger.addHandler(catch)
            logger.propagate = False
        _active.count += 1
        for handler in logger.handlers:
            if _ROUTER not in handler.filters:
                handler.addFilter(_ROUTER)
    try:
        yield path
    finally:
        _private_path.reset(token)
        with _active_lock:
            _active.count -= 1
            if _active.count == 0:
                for handler in [h for h in logger.handlers if isinstance(h, _Catch)]:
                    logger.removeHandler(handler)
                logger.propagate = _active.propagate
