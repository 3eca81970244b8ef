"""Structured logging: ``time level logger: event key=value ...`` on stderr.

Library code logs with ``logging.getLogger(__name__)`` and passes facts in ``extra``;
nothing logs data values (rows, real-data counts, extremes or figures).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import os
import sys
import threading
import warnings
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


OUTPUT_LOG = "output.log"  # what a private step printed or warned


def _append(path: Path, text: str) -> None:
    with _PrivateRouter._lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(text)


class _RoutedStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr`` while any private channel is open:
    a write from a context inside a private channel goes to that run's ``output.log``;
    any other write goes to the stream that was there before. The choice is per context
    (thread or task), so concurrent steps cannot swap each other's streams."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        path = _private_path.get()
        if path is None:
            return self.original.write(text)
        _append(path.with_name(OUTPUT_LOG), text)
        return len(text)

    def flush(self) -> None:
        if _private_path.get() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return False if _private_path.get() is not None else self.original.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return getattr(self.original, "encoding", "utf-8")


def _routed_showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]  # warnings' own hook signature
    path = _private_path.get()
    if path is None:
        _active.showwarning(message, category, filename, lineno, file, line)
        return
    _append(path.with_name(OUTPUT_LOG), f"warning: {category.__name__}: {message}\n")


class _Active:
    """What the first private channel replaced, restored when the last one closes."""

    count = 0
    propagate = False
    stdout: TextIO = sys.stdout
    stderr: TextIO = sys.stderr
    showwarning = staticmethod(warnings.showwarning)


_active = _Active()
_active_lock = threading.Lock()
# loggers whose handlers are public channels: ours, the root (third-party libraries),
# and Prefect's (its API log handler and console)
_ROUTED_LOGGERS = ("synthrelease", "", "prefect")


@contextlib.contextmanager
def private_channel(folder: Path) -> Iterator[Path]:
    """While the body runs (in this thread or task context), whatever it logs (under
    any logger), prints or warns goes to ``folder/private.log`` / ``folder/output.log``
    only: never to stderr, stdout, Prefect's API log handler or the root logger's
    handlers. Run steps that read sensitive rows run inside it, so that what a step says
    cannot depend on the rows in any public channel. Concurrent uses (threads of a
    parallel check) are routed per context; the first one installs the routing and the
    last one removes it."""
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
            _active.stdout, _active.stderr = sys.stdout, sys.stderr
            _active.showwarning = warnings.showwarning
            sys.stdout = _RoutedStream(_active.stdout)
            sys.stderr = _RoutedStream(_active.stderr)
            warnings.showwarning = _routed_showwarning
        _active.count += 1
        for name in _ROUTED_LOGGERS:
            for handler in logging.getLogger(name).handlers:
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
                sys.stdout, sys.stderr = _active.stdout, _active.stderr
                warnings.showwarning = _active.showwarning
