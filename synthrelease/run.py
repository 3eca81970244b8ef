"""One release, in order: the steps of :mod:`synthrelease.pipeline` as plain functions.

:func:`release` is the whole sequence; the Prefect flows (``flows/release.py``) wrap the
same step functions below as tasks and read the same way. A step takes the run's private
folder (a reference) and reads the spec frozen there by :func:`opened`.

What a step that may read rows shows in public does not depend on the rows:
:func:`private_step` runs it inside the run's private channel (logs, prints and warnings
go to the run's folder), returns nothing and never raises; a failure is recorded
privately and the later steps do nothing, up to ``finish``, the one step that speaks in
public (:func:`synthrelease.pipeline.finish`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from synthrelease import pipeline
from synthrelease.errors import ChargedRunError, ConcurrentRunError
from synthrelease.ledger import open_ledger
from synthrelease.log import private_channel
from synthrelease.owner_only import private_dir
from synthrelease.pipeline import PinnedRun, ReleaseSummary
from synthrelease.private.workspace import Workspace
from synthrelease.spec import ReleaseSpec, load_spec
from synthrelease.validators.summary import verdict_markdown

log = logging.getLogger(__name__)


def private_step(step: Callable[..., object]) -> Callable[..., None]:
    """``step(run, *args)`` as a function of the run's folder that may read rows: it runs
    inside the run's private channel, returns None, and never raises (a failure is
    recorded in the run's folder and marks the run failed). A step of a failed run does
    nothing."""

    def run_step(run_dir: str, *args: str) -> None:
        run = PinnedRun.load(run_dir)
        if run.failed:
            return
        with private_channel(run.root):
            try:
                step(run, *args)
            except Exception as exc:
                pipeline.record_failure(run, step.__name__, exc)

    run_step.__name__ = run_step.__qualname__ = step.__name__
    run_step.__doc__ = step.__doc__
    return run_step


def reserve(run_dir: str) -> str:
    """Reserve the run's budget in the ledger (reads no row; its errors are public)."""
    return pipeline.reserve(PinnedRun.load(run_dir))


def finish(run_dir: str) -> ReleaseSummary:
    """Settle the run and say how it ended: the summary, or the one public failure."""
    return pipeline.finish(PinnedRun.load(run_dir))


train = private_step(pipeline.train)
sample = private_step(pipeline.sample)
check = private_step(pipeline.check)
check_part = private_step(pipeline.check_part)  # one part of check (parallel flows)
merge_checks = private_step(pipeline.merge_checks)  # after the parts
gate = private_step(pipeline.gate)
publish = private_step(pipeline.publish)


def check_parts(run_dir: str) -> tuple[str, ...]:
    """The parts of the check step for this run's frozen spec (public: spec only)."""
    return pipeline.check_parts(PinnedRun.load(run_dir).spec)


@contextlib.contextmanager
def table_lock(spec: ReleaseSpec) -> Iterator[None]:
    """At most one run per table and workspace at a time (an OS file lock: it is released
    when the process ends, also by SIGKILL)."""
    locks = private_dir(Workspace(spec.workspace.path).ensure().root / "locks")
    fd = os.open(locks / f"{spec.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConcurrentRunError(
                f"another release of table {spec.name!r} is running in workspace "
                f"{spec.workspace.path}; try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


def settle_abandoned(spec: ReleaseSpec) -> int:
    """Reservations left open by runs that died on this host are settled as *spent*.

    Called while holding the table lock, so no live run of this table exists here.
    A run that died may have touched the data: its budget is never refunded.
    """
    host = socket.gethostname()
    settled = 0
    with open_ledger(spec) as ledger:
        for entry in ledger.entries(spec.name):
            if entry.status != "reserved" or not entry.owner:
                continue
            owner_host, _, pid = entry.owner.rpartition(":")
            if owner_host != host or _alive(int(pid)):
                continue
            ledger.mark_spent(
                entry.id,
                reason=pipeline.CHARGED,
                private_reason="run died before settling; budget kept as spent",
            )
            Workspace.remove_splits(pipeline.run_paths(spec, entry.run_id))
            settled += 1
    if settled:
        log.warning(
            "settled reservations of dead runs as spent",
            extra={"dataset": spec.name, "count": settled},
        )
    return settled


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def opened(spec_path: str | Path) -> Iterator[str]:
    """Open a run of the spec at ``spec_path``: read it once, preflight it (no row is
    read), take the table's lock, settle dead runs, and pin the run; yields its folder.

    Whatever ends the body after that, the run is settled (spent once a row may have
    been read: then the one public failure is raised instead of the original error) and
    its copies of sensitive rows are removed.
    """
    spec = load_spec(spec_path)
    pipeline.preflight(spec)
    with table_lock(spec):
        settle_abandoned(spec)
        run = pipeline.pin(spec, pipeline.new_run_id())
        try:
            yield str(run.root)
        except ChargedRunError:
            raise
        except BaseException as exc:
            loaded = PinnedRun.load(run.root)
            if not loaded.reservation:  # the reservation itself failed: nothing to settle
                raise
            status = pipeline.fail(loaded, exc)
            if status == "spent" and not isinstance(exc, KeyboardInterrupt):
                raise pipeline.charged_error(loaded, None) from None
            raise
        finally:
            pipeline.cleanup(run)


def release(spec_path: str | Path) -> ReleaseSummary:
    """Release one table: reserve, train, sample, check, gate, publish, finish."""
    with opened(spec_path) as run_dir:
        reserve(run_dir)
        train(run_dir)
        sample(run_dir)
        check(run_dir)
        gate(run_dir)
        publish(run_dir)
        return finish(run_dir)


def summary_markdown(summary: ReleaseSummary) -> str:
    """Public summary of a finished run (no real-data figure): for a Prefect artifact.
    The gate's table comes from :func:`~synthrelease.validators.summary.verdict_markdown`
    (whitelisted keys only)."""
    lines = [
        f"# Release {summary.release_id}",
        "",
        f"- epsilon spent: **{summary.epsilon:g}** (delta {summary.delta:g})",
        f"- gate: **{'passed' if summary.passed else 'FAILED'}**",
        f"- internal report (private workspace): `{summary.report}`",
        "",
    ]
    verdict = {"passed": summary.passed, "checks": list(summary.checks)}
    return "\n".join(lines) + "\n#" + verdict_markdown(verdict)
