"""Test driver: run one release (steps called directly) and SIGKILL this very process at
a chosen point, as an OOM killer or a lost machine would.

    python tests/crash_driver.py STAGE SPEC
"""

from __future__ import annotations

import os
import signal
import sys


def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def arm(stage: str) -> None:
    from synthrelease import run

    if stage == "after-reserve":
        reserve = run.reserve

        def reserve_then_die(run_dir):
            reserve(run_dir)
            die()

        run.reserve = reserve_then_die
    elif stage == "mid-training":
        from synthrelease.generators.marginal.mst import MSTGenerator

        MSTGenerator.fit = die  # the run is already marked as having touched the data
    elif stage == "mid-validation":
        import synthrelease.validators.checks.marginals as marginals

        marginals.marginal_copy_figures = die
    elif stage == "mid-publish":
        from fsspec.implementations.local import LocalFileSystem

        put_file = LocalFileSystem.put_file

        def put_one_then_die(self, *args, **kwargs):
            put_file(self, *args, **kwargs)
            die()

        LocalFileSystem.put_file = put_one_then_die
    elif stage == "before-latest":
        from synthrelease.store import ReleaseStore

        write_atomic = ReleaseStore.write_atomic

        def die_on_latest(self, path, data):
            if path.endswith("/LATEST"):
                die()
            write_atomic(self, path, data)

        ReleaseStore.write_atomic = die_on_latest
    else:
        raise SystemExit(f"unknown stage {stage}")


if __name__ == "__main__":
    stage, spec_path = sys.argv[1], sys.argv[2]
    arm(stage)
    from synthrelease import run

    run.release(spec_path)
    raise SystemExit("the crash point was never reached")
