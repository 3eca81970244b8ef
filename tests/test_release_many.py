"""Releasing several tables in one flow on a local 2-worker Dask cluster (127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synthrelease.store import ReleaseStore
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_release_many_on_dask(spec_factory, tmp_path):
    specs = [str(spec_factory(name=f"table{i}", store={"uri": str(tmp_path / "store")})) for i in range(2)]
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL="",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", DO_NOT_TRACK="1")
    proc = subprocess.run([sys.executable, str(ROOT / "flows" / "release_many.py"), *specs],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    names = sorted(r.dataset for r in ReleaseStore(str(tmp_path / "store")).releases())
    assert names == ["table0", "table1"]
