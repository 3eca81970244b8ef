"""Prefect flow ``release-many``: release several tables in parallel on Dask.

Each table's whole release runs inside one task (its sensitive rows never leave that
worker process; the task's argument is the spec path). Tables are independent, so a
Dask cluster (local processes by default, or an existing scheduler address) runs them
side by side. Result persistence and caching are off.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect_dask import DaskTaskRunner

from synthrelease import run
from synthrelease.pipeline import ReleaseSummary


@task(name="release-table", cache_policy=NO_CACHE, persist_result=False)
def release_table(spec_path: str) -> ReleaseSummary:
    return run.release(spec_path)


def dask_runner(*, workers: int = 2, address: str | None = None) -> DaskTaskRunner:
    """A local cluster on 127.0.0.1 (no dashboard), or an existing scheduler."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )


@flow(
    name="release-many",
    persist_result=False,
    task_runner=dask_runner(),  # type: ignore[arg-type]  # prefect-dask's runner is generic over its own future type
)
def release_many(spec_paths: list[str]) -> list[ReleaseSummary]:
    """Release every spec; raises if any failed (the others still complete)."""
    futures = [release_table.submit(p) for p in spec_paths]
    states = [f.wait() or f.state for f in futures]
    failed = [p for p, s in zip(spec_paths, states) if not s.is_completed()]
    results = [s.result() for s in states if s.is_completed()]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(spec_paths)} releases failed: {failed}")
    return results


if __name__ == "__main__":  # pragma: no cover - process/Dask runners need the guard
    import sys

    from synthrelease.flows.api import prefect_api, server_answers

    with prefect_api(configured=server_answers()):
        release_many(sys.argv[1:])
