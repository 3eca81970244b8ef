"""Where the train step's ingestion shards run (:func:`synthrelease.private.ingest.ingest`).

A Parquet dataset of several files is read in shards, one a file, and the shards can
run side by side; the outputs (code store, facts, split, samples) do not depend on where
(``tests/test_shards.py``). The choice is a property of the machine, not of the release,
so it comes from the environment, read once per train step:

- ``SYNTHRELEASE_DASK_ADDRESS`` (set by ``synthrelease run SPEC --dask ADDRESS``): the
  shards run on that Dask cluster. Its workers must see the workspace's files (a local
  cluster, or one on a shared private filesystem): a shard job carries the run's secret
  split key and a shard's result its private row counts, so the cluster is part of the
  custodian's private workspace (its logs included).
- else ``SYNTHRELEASE_INGEST_WORKERS`` (default: the machine's cores, at most 2): a pool
  of that many local processes (spawned; their standard streams go to ``/dev/null``, so
  nothing a shard prints reaches a public stream); 1 runs the shards one after another
  in the step's own process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor

from synthrelease.errors import SpecError

DASK_ADDRESS = "SYNTHRELEASE_DASK_ADDRESS"
INGEST_WORKERS = "SYNTHRELEASE_INGEST_WORKERS"


def _silence() -> None:
    """A pool worker's initializer: standard output and error to /dev/null, warnings
    and logging off."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)


def workers() -> int:
    raw = os.environ.get(INGEST_WORKERS)
    if raw is None:
        return max(1, min(2, os.cpu_count() or 1))
    try:
        count = int(raw)
    except ValueError:
        raise SpecError(f"{INGEST_WORKERS} must be a whole number, not {raw!r}") from None
    if count < 1:
        raise SpecError(f"{INGEST_WORKERS} must be at least 1")
    return count


@contextlib.contextmanager
def ingest_executor() -> Iterator[Executor | None]:
    """The executor of this step's shards (None: in this process, in order)."""
    address = os.environ.get(DASK_ADDRESS)
    if address:
        # distributed takes a second to import: only when a cluster is asked for
        from distributed import Client

        with Client(address, set_as_default=False) as client:
            yield client.get_executor(pure=False)
        return
    count = workers()
    if count == 1:
        yield None
        return
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    with ProcessPoolExecutor(count, mp_context=context, initializer=_silence) as pool:
        yield pool
