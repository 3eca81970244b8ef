"""Prefect flow ``release-dask``: the ``release`` flow with the check step's parts
(the GX suite and each real-data check) running in parallel on a Dask cluster.

Tasks take the spec path, the run id and a part name (references); each part loads the
rows it needs from the private workspace itself, so the workers must see the same
workspace (one machine, or a shared private filesystem). The local default is a
2-process cluster on 127.0.0.1 (``dask_runner`` of ``release_many``).

    synthrelease run configs/adult.yaml --dask

To deploy it, add an entry with ``entrypoint: flows/release_dask.py:release_dask`` to
``prefect.yaml`` (the worker then starts the local cluster, or give ``dask_runner`` an
existing scheduler's address).
"""

from __future__ import annotations

from prefect import flow

from synthrelease.flows.release import release_run
from synthrelease.flows.release_many import dask_runner
from synthrelease.pipeline import ReleaseSummary


@flow(
    name="release-dask",
    persist_result=False,
    log_prints=False,
    validate_parameters=True,
    task_runner=dask_runner(),  # type: ignore[arg-type]  # prefect-dask's runner is generic over its own future type
)
def release_dask(spec_path: str) -> ReleaseSummary:
    """Release one table, validating on Dask (see the module docstring)."""
    return release_run(spec_path, parallel_checks=True)


if __name__ == "__main__":  # pragma: no cover - process/Dask runners need the guard
    import sys

    from synthrelease.flows.api import prefect_api, server_answers

    with prefect_api(configured=server_answers()):
        release_dask(sys.argv[1])
