"""One release, sequenced in one place.

``run_release`` is the order of the steps and the ledger rules around them. The Prefect
flow passes a ``call`` that runs each step as a task; ``release_many`` and the tests use
the default, which calls the step directly. A step receives the run's private folder (a
reference), never data, and reads the spec frozen there at ``pin`` time.

What a step that may read rows shows in public does not depend on the rows: inside
:func:`direct` such a step logs, prints and warns only into the run's private folder,
returns nothing, and never raises; a failure is recorded privately and the run goes on
as a no-op to ``finish``, the one step that speaks in public (see
:func:`synthrelease.pipeline.finish`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from synthrelease import pipeline
from synthrelease.errors import ChargedRunError, ConcurrentRunError
from synthrelease.log import private_channel
from synthrelease.pipeline import PinnedRun
from synthrelease.private.workspace import FILE_MODE, Workspace, private_dir
from synthrelease.spec import ReleaseSpec, load_spec

log = logging.getLogger(__name__)

# The steps that may read sensitive rows (or figures computed on them): private output.
STEPS: dict[str, Callable[..., Any]] = {
    "train": pipeline.train,
    "sample": pipeline.sample,
    "check": pipeline.check,
    "check_part": pipeline.check_part,  # one part of "check" (parallel flows), + part name
    "merge_checks": pipeline.merge_checks,  # after the parts of "check" (parallel flows)
    "gate": pipeline.gate,
    "publish": pipeline.publish,
}
# The steps that read no row and speak in public: reserve the budget, settle the run.
PUBLIC_STEPS: dict[str, Callable[[PinnedRun], Any]] = {
    "reserve": pipeline.reserve,
    "finish": pipeline.finish,
}
Call = Callable[..., Any]  # call(step, run_dir, *args)
OUTPUT_FILE = "output.log"  # what a private step printed or warned


def direct(step: str, run_dir: str, *args: str) -> Any:
    """Run one step of the pinned run in ``run_dir`` in this process.

    ``reserve`` and ``finish`` run as they are (their errors are public and read no
    row). Every other step runs inside the run's private channel: logs, prints and
    warnings go to the run's folder; any exception is recorded there and marks the run
    failed; the step returns None. A step of a failed run does nothing.
    """
    run = PinnedRun.load(run_dir)
    if step in PUBLIC_STEPS:
        return PUBLIC_STEPS[step](run)
    if run.failed:
        return None
    with private_channel(run.root), _private_output(run.root):
        try:
            STEPS[step](run, *args)
        except Exception as exc:  # noqa: BLE001 - recorded privately; finish speaks
            pipeline.record_failure(run, step, exc)
    return None


@contextlib.contextmanager
def _private_output(folder: Path) -> Iterator[None]:
    """Prints (progress bars included) and warnings of a private step go to its folder."""
    fd = os.open(folder / OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as out, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for w in caught:
                out.write(f"warning: {w.category.__name__}: {w.message}\n")


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
    with pipeline.open_ledger(spec) as ledger:
        for entry in ledger.entries(spec.name):
            if entry.status != "reserved" or not entry.owner:
                continue
            owner_host, _, pid = entry.owner.rpartition(":")
            if owner_host != host or _alive(int(pid)):
                continue
            ledger.mark_spent(entry.id, reason=pipeline.CHARGED,
                              private_reason="run died before settling; budget kept as spent")
            Workspace.remove_splits(pipeline.run_paths(spec, entry.run_id))
            settled += 1
    if settled:
        log.warning("settled reservations of dead runs as spent",
                    extra={"dataset": spec.name, "count": settled})
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


def run_release(spec_path: str | Path, *, call: Call = direct,
                check: Call | None = None) -> dict[str, Any]:
    """Release one table: preflight, pin, reserve, train, sample, check, gate, publish,
    finish.

    The spec is read once, here; ``pin`` freezes it into the run folder and every step
    reads that copy. ``check`` replaces the check step (e.g. a flow running its parts in
    parallel and then ``merge_checks``); it takes the same arguments as ``call``.
    Returns the public summary, or raises the one public error of a charged run. The
    run's copies of sensitive rows are removed whatever happens.
    """
    spec = load_spec(spec_path)
    pipeline.preflight(spec)
    with table_lock(spec):
        settle_abandoned(spec)
        run = pipeline.pin(spec, pipeline.new_run_id())
        run_dir = str(run.root)
        call("reserve", run_dir)
        try:
            call("train", run_dir)
            call("sample", run_dir)
            (check or call)("check", run_dir)
            call("gate", run_dir)
            call("publish", run_dir)
            return call("finish", run_dir)
        except ChargedRunError:
            raise
        except BaseException as exc:
            run = PinnedRun.load(run_dir)
            status = pipeline.fail(run, exc)
            if status == "spent" and not isinstance(exc, KeyboardInterrupt):
                raise pipeline.charged_error(run, None) from None
            raise
        finally:
            pipeline.cleanup(run)


def summary_markdown(summary: dict[str, Any]) -> str:
    """Public summary of a finished run (no real-data figure): for a Prefect artifact.
    The gate's table comes from :func:`~synthrelease.validators.summary.verdict_markdown`
    (whitelisted keys only)."""
    from synthrelease.validators.summary import verdict_markdown

    lines = [
        f"# Release {summary['release_id']}",
        "",
        f"- epsilon spent: **{summary['epsilon']:g}** (delta {summary['delta']:g})",
        f"- gate: **{'passed' if summary['passed'] else 'FAILED'}**",
        f"- internal report (private workspace): `{summary.get('report')}`",
        "",
    ]
    verdict = {"passed": summary["passed"], "checks": summary.get("checks", [])}
    return "\n".join(lines) + "\n#" + verdict_markdown(verdict)
