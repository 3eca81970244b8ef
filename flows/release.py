"""Prefect flow ``release``: reserve -> train -> sample -> check -> gate -> publish.

Thin orchestration: the flow body is the task graph; each task is a step function of
:mod:`synthrelease.run` (the same sequence as :func:`synthrelease.run.release`), wrapped
once. Tasks receive the run's private folder (a
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

from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from prefect import Task, flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from synthrelease import run
from synthrelease.errors import SynthReleaseError
from synthrelease.pipeline import ReleaseSummary

P = ParamSpec("P")
R = TypeVar("R")


def _private(name: str, step: Callable[P, R]) -> Task[P, R]:
    """A step as a task with caching, result persistence and print capture off."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False, log_prints=False)(step)


# Each step function of synthrelease.run, wrapped as a task once.
reserve = _private("reserve", run.reserve)
train = _private("train", run.train)
sample = _private("sample", run.sample)
check = _private("check", run.check)
check_part = _private("check-part", run.check_part)
merge_checks = _private("merge-checks", run.merge_checks)
gate = _private("gate", run.gate)
publish = _private("publish", run.publish)
finish = _private("finish", run.finish)


def release_run(spec_path: str, *, parallel_checks: bool) -> ReleaseSummary:
    """The body of the release flows: the task graph, with an artifact at the end.
    ``parallel_checks``: the check step's parts (the GX suite and each real-data check)
    as concurrent tasks on the flow's task runner, then a merge; a part that fails
    leaves its figures out and the gate fails closed."""
    try:
        with run.opened(spec_path) as run_dir:
            reserve(run_dir)
            train(run_dir)
            sample(run_dir)
            if parallel_checks:
                parts = [check_part.submit(run_dir, p) for p in run.check_parts(run_dir)]
                wait(parts)
                merge_checks(run_dir)
            else:
                check(run_dir)
            gate(run_dir)
            publish(run_dir)
            summary = finish(run_dir)
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
    stem = "".join(c if c.isalnum() else "-" for c in Path(spec_path).stem.lower())
    return f"release-{stem}"[:100]


@flow(name="release", persist_result=False, log_prints=False, validate_parameters=True)
def release(spec_path: str, parallel_checks: bool = False) -> ReleaseSummary:
    """Release one table as DP synthetic data, as declared by the spec at ``spec_path``.
    ``parallel_checks``: run the check step's parts as concurrent tasks (threads of this
    process; ``flows/release_dask.py`` runs them on a Dask cluster)."""
    return release_run(spec_path, parallel_checks=parallel_checks)
