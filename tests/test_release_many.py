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
    specs = [
        str(spec_factory(name=f"table{i}", store={"uri": str(tmp_path / "store")}))
        for i in range(2)
    ]
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL="",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        DO_NOT_TRACK="1",
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "flows" / "release_many.py"), *specs],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    names = sorted(r.dataset for r in ReleaseStore(str(tmp_path / "store")).releases())
    assert names == ["table0", "table1"]


def test_release_with_checks_in_parallel_on_dask(spec_factory, tmp_path):
    """`synthrelease run --dask`: the check step's parts run as separate tasks on a local
    Dask cluster, are merged, and the gated release is published."""
    import json
    import sqlite3

    from synthrelease.pipeline import check_parts
    from synthrelease.spec import load_spec

    spec = spec_factory(store={"uri": str(tmp_path / "store")})
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL="",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        DO_NOT_TRACK="1",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "synthrelease.cli", "run", str(spec), "--dask"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "gate: passed" in proc.stdout
    manifest = ReleaseStore(str(tmp_path / "store")).manifest("small")
    names = {c["name"] for c in manifest["gate"]["checks"]}
    assert {"tvd_2way", "mia_auc", "expectations"} <= names and manifest["gate"]["passed"]
    db = next((tmp_path / "prefect-home").rglob("*.db"))
    with sqlite3.connect(db) as conn:
        flows = [r[0] for r in conn.execute("select name from flow")]
        params = [json.loads(r[0]) for r in conn.execute("select parameters from flow_run")]
        parts = [
            r[0] for r in conn.execute("select name from task_run where name like 'check-part%'")
        ]
    assert flows == ["release-dask"]
    assert len(parts) == len(check_parts(load_spec(spec)))  # one task run per part
    assert params and all(set(p) == {"spec_path"} for p in params)  # a reference only
    # one output per part, written by the part tasks in the private workspace, then merged
    outputs = sorted(p.stem for p in (tmp_path / "ws").rglob("checks/*.json"))
    assert outputs == sorted(check_parts(load_spec(spec)))
