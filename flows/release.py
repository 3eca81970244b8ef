"""Prefect flow ``release``: reserve -> train -> sample -> check -> gate -> publish.

Thin orchestration: :func:`synthrelease.run.run_release` holds the order and the ledger
rules; here each step runs as a Prefect task. Tasks receive the spec *path* and the run
id (references) and return public values only; caching and result persistence are off,
so nothing a task sees can land in Prefect's storage. Store I/O is retried with backoff;
privacy steps are never retried (a retry would spend budget again).

Deployed by ``prefect.yaml`` (entrypoint ``flows/release.py:release``); run locally by
``synthrelease run SPEC``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from synthrelease import run
from synthrelease.errors import GateFailedError, IntegrityError, StoreError, SynthReleaseError

PRIVATE = dict(cache_policy=NO_CACHE, persist_result=False, log_prints=False)


def _store_trouble(task, task_run, state) -> bool:
    """Retry publishing only on store I/O trouble, never on a gate refusal."""
    try:
        state.result()
    except (GateFailedError, IntegrityError):
        return False
    except StoreError:
        return True
    except Exception:
        return False
    return False


def _step_task(step: str, **options: Any):
    def body(spec_path: str, run_id: str) -> Any:
        return run.direct(step, spec_path, run_id)

    body.__name__ = body.__qualname__ = f"{step}_task"
    return task(name=step, **PRIVATE, **options)(body)


TASKS = {step: _step_task(step) for step in run.STEPS if step != "publish"}
TASKS["publish"] = _step_task(
    "publish", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=_store_trouble
)


@task(name="check-part", **PRIVATE)
def check_part_task(spec_path: str, run_id: str, part: str) -> Any:
    return run.direct(f"{run.CHECK_PART}{part}", spec_path, run_id)


def _as_task(step: str, spec_path: str, run_id: str) -> Any:
    return TASKS[step](spec_path, run_id)


def _parallel_checks(step: str, spec_path: str, run_id: str) -> Any:
    """The check step as parallel tasks on the flow's task runner (one per part: the GX
    suite and each real-data check; each loads the rows itself, by reference), then a
    merge. A part that fails leaves its figures out, and the gate fails closed."""
    from synthrelease import pipeline
    from synthrelease.spec import load_spec

    parts = pipeline.check_parts(load_spec(spec_path))
    futures = [check_part_task.submit(spec_path, run_id, part) for part in parts]
    for future in futures:
        future.wait()
    return TASKS["merge_checks"](spec_path, run_id)


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
