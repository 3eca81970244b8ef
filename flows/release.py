"""Prefect flow ``release``: reserve -> train -> sample -> check -> gate -> publish.

Thin orchestration: :func:`synthrelease.run.run_release` holds the order and the ledger
rules; here each step runs as a Prefect task. Tasks receive the run's private folder (a
reference to the pinned run) and return nothing but the public summary of ``finish``;
caching and result persistence are off, so nothing a task sees can land in Prefect's
storage. A step that may read rows never fails as a task (its failure is recorded in the
run's folder), so the task states, logs and artifacts of a failed run are the same
whatever the rows hold; only ``finish`` fails, with the one public message. No step is
retried (a retry would read the rows again).

Deployed by ``prefect.yaml`` (entrypoint ``flows/release.py:release``); run locally by
``synthrelease run SPEC``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from synthrelease import pipeline, run
from synthrelease.errors import SynthReleaseError
from synthrelease.pipeline import PinnedRun

PRIVATE = dict(cache_policy=NO_CACHE, persist_result=False, log_prints=False)


def _step_task(step: str):
    def body(run_dir: str) -> Any:
        return run.direct(step, run_dir)

    body.__name__ = body.__qualname__ = f"{step}_task"
    return task(name=step, **PRIVATE)(body)


TASKS = {step: _step_task(step) for step in (*run.PUBLIC_STEPS, *run.STEPS)
         if step != "check_part"}


@task(name="check-part", **PRIVATE)
def check_part_task(run_dir: str, part: str) -> Any:
    return run.direct("check_part", run_dir, part)


def _as_task(step: str, run_dir: str) -> Any:
    return TASKS[step](run_dir)


def _parallel_checks(step: str, run_dir: str) -> Any:
    """The check step as parallel tasks on the flow's task runner (one per part: the GX
    suite and each real-data check; each loads the rows itself, by reference), then a
    merge. A part that fails leaves its figures out, and the gate fails closed."""
    parts = pipeline.check_parts(PinnedRun.load(run_dir).spec)
    futures = [check_part_task.submit(run_dir, part) for part in parts]
    for future in futures:
        future.wait()
    return TASKS["merge_checks"](run_dir)


def release_run(spec_path: str, *, parallel_checks: bool) -> dict[str, Any]:
    """The body of the release flows: the steps as tasks, with an artifact at the end."""
    try:
        summary = run.run_release(spec_path, call=_as_task,
                                  check=_parallel_checks if parallel_checks else None)
    except SynthReleaseError as exc:
        create_markdown_artifact(
            key=_artifact_key(spec_path),
            markdown=f"# Release failed\n\n{type(exc).__name__}: {exc}\n",
            description="synthrelease run summary (public values only)",
        )
        raise
    create_markdown_artifact(
        key=_artifact_key(spec_path),
        markdown=run.summary_markdown(summary),
        description="synthrelease run summary (public values only)",
    )
    return summary


def _artifact_key(spec_path: str) -> str:
    from pathlib import Path

    stem = "".join(c if c.isalnum() else "-" for c in Path(spec_path).stem.lower())
    return f"release-{stem}"[:100]


@flow(name="release", persist_result=False, log_prints=False, validate_parameters=True)
def release(spec_path: str, parallel_checks: bool = False) -> dict[str, Any]:
    """Release one table as DP synthetic data, as declared by the spec at ``spec_path``.
    ``parallel_checks``: run the check step's parts as concurrent tasks (threads of this
    process; ``flows/release_dask.py`` runs them on a Dask cluster)."""
    return release_run(spec_path, parallel_checks=parallel_checks)
