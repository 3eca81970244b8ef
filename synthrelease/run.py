"""One release, sequenced in one place.

``run_release`` is the order of the steps and the ledger rules around them. The Prefect
flow passes a ``call`` that runs each step as a task; ``release_many`` and the tests use
the default, which calls the step directly. Steps receive the spec *path* and the run
id, so a step's inputs are references, never data.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from synthrelease import pipeline
from synthrelease.errors import ConcurrentRunError, StepFailedError, SynthReleaseError
from synthrelease.private.workspace import Workspace, private_dir
from synthrelease.spec import ReleaseSpec, load_spec

log = logging.getLogger(__name__)

STEPS: dict[str, Callable[[ReleaseSpec, str], Any]] = {
    "reserve": pipeline.reserve,
    "train": pipeline.train,
    "sample": pipeline.sample,
    "check": pipeline.check,
    "gate": pipeline.gate,
    "publish": pipeline.publish,
    "merge_checks": pipeline.merge_checks,  # after the parts of "check" (parallel flows)
}
Call = Callable[[str, str, str], Any]
CHECK_PART = "check:"  # step "check:<part>": one part of the check step (pipeline.check_parts)


def _step(step: str) -> Callable[[ReleaseSpec, str], Any]:
    if step.startswith(CHECK_PART):
        part = step[len(CHECK_PART):]
        return lambda spec, run_id: pipeline.check_part(spec, run_id, part)
    return STEPS[step]


def direct(step: str, spec_path: str, run_id: str) -> Any:
    """Run one step in this process.

    Typed errors pass as they are (their messages never quote data). Anything else is
    replaced by a :class:`StepFailedError` naming only its type; the traceback goes to
    ``error.txt`` in the run's private folder.
    """
    spec = load_spec(spec_path)
    try:
        return _step(step)(spec, run_id)
    except SynthReleaseError:
        raise
    except Exception as exc:
        path = pipeline.run_paths(spec, run_id).root / "error.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(f"step {step}:\n{traceback.format_exc()}\n")
        raise StepFailedError(
            f"step {step!r} failed with {type(exc).__name__}; details withheld (they may "
            f"quote data), see {path}"
        ) from None


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
    ledger = pipeline.open_ledger(spec)
    host = socket.gethostname()
    settled = 0
    try:
        for entry in ledger.entries(spec.name):
            if entry.status != "reserved" or not entry.owner:
                continue
            owner_host, _, pid = entry.owner.rpartition(":")
            if owner_host != host or _alive(int(pid)):
                continue
            ledger.mark_spent(entry.id, reason="run died before settling; budget kept as spent")
            Workspace.remove_splits(pipeline.run_paths(spec, entry.run_id))
            settled += 1
    finally:
        ledger.close()
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
    """Release one table: preflight, reserve, train, sample, check, gate, publish.

    ``check`` replaces the check step (e.g. a flow running its parts in parallel and then
    ``merge_checks``); it takes the same arguments as ``call``. Returns the public
    summary. On failure the reservation is settled (spent once the data was touched,
    voided before) and the run's copies of sensitive rows are removed.
    """
    spec_path = str(spec_path)
    spec = load_spec(spec_path)
    pipeline.preflight(spec)
    run_id = pipeline.new_run_id()
    with table_lock(spec):
        settle_abandoned(spec)
        reservation = call("reserve", spec_path, run_id)
        try:
            privacy = call("train", spec_path, run_id)
            call("sample", spec_path, run_id)
            (check or call)("check", spec_path, run_id)
            verdict = call("gate", spec_path, run_id)
            release_id = call("publish", spec_path, run_id)
            pipeline.complete(spec, reservation)
        except BaseException as exc:
            pipeline.fail(spec, run_id, reservation, exc)
            raise
        finally:
            pipeline.cleanup(spec, run_id)
    return {
        "dataset": spec.name,
        "release_id": release_id,
        "run_id": run_id,
        "epsilon": privacy["epsilon"],
        "delta": privacy["delta"],
        "passed": bool(verdict["passed"]),
        "checks": verdict.get("checks", []),
        "report": verdict.get("report"),
    }


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
