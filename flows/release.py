"""Prefect flow ``release``: reserve -> train -> sample -> check -> gate -> publish.

Thin orchestration over :mod:`synthrelease.pipeline`. Tasks receive the spec *path* and
the run id (references) and return public values only; result persistence and caching
are off for every task, so nothing a task sees can land in Prefect's storage.

Deployed by ``prefect.yaml`` (entrypoint ``flows/release.py:release``); run locally by
``synthrelease run SPEC``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from synthrelease import pipeline
from synthrelease.errors import GateFailedError, IntegrityError, StoreError
from synthrelease.spec import load_spec

PRIVATE = dict(cache_policy=NO_CACHE, persist_result=False, log_prints=False)


@task(name="reserve", **PRIVATE)
def reserve_task(spec_path: str, run_id: str) -> str:
    return pipeline.reserve(load_spec(spec_path), run_id)


@task(name="train", **PRIVATE)
def train_task(spec_path: str, run_id: str) -> dict[str, Any]:
    return pipeline.train(load_spec(spec_path), run_id)


@task(name="sample", **PRIVATE)
def sample_task(spec_path: str, run_id: str) -> None:
    pipeline.sample(load_spec(spec_path), run_id)


@task(name="check", **PRIVATE)
def check_task(spec_path: str, run_id: str) -> None:
    pipeline.check(load_spec(spec_path), run_id)


@task(name="gate", **PRIVATE)
def gate_task(spec_path: str, run_id: str) -> dict[str, Any]:
    return pipeline.gate(load_spec(spec_path), run_id)


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


@task(name="publish", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=_store_trouble, **PRIVATE)
def publish_task(spec_path: str, run_id: str) -> str:
    return pipeline.publish(load_spec(spec_path), run_id)


@flow(name="release", persist_result=False, log_prints=False, validate_parameters=True)
def release(spec_path: str) -> dict[str, Any]:
    """Release one table as DP synthetic data, as declared by the spec at ``spec_path``."""
    spec = load_spec(spec_path)
    pipeline.preflight(spec)
    run_id = pipeline.new_run_id()
    reservation = reserve_task(spec_path, run_id)
    try:
        privacy = train_task(spec_path, run_id)
        sample_task(spec_path, run_id)
        check_task(spec_path, run_id)
        verdict = gate_task(spec_path, run_id)
        release_id = publish_task(spec_path, run_id)
        pipeline.complete(spec, reservation)
    except BaseException as exc:
        pipeline.fail(spec, run_id, reservation, exc)
        raise
    finally:
        pipeline.cleanup(spec, run_id)
    return {
        "release_id": release_id,
        "epsilon": privacy["epsilon"],
        "delta": privacy["delta"],
        "passed": verdict["passed"],
        "run_id": run_id,
    }
