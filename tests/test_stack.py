"""The real stack: Prefect server + process worker started by scripts/stack.sh, the
deployment run with `prefect deployment run release/adult --watch`, and a scan of
everything Prefect stored for values of the sensitive table."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synthrelease.store import ReleaseStore
from tests.conftest import ROOT, adult_spec_for

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(home),
        SYNTHRELEASE_PREFECT_PORT=str(port),
        BIN=str(BIN),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
    )
    script = str(ROOT / "scripts" / "stack.sh")
    up = subprocess.run([script, "up"], env=env, capture_output=True, text=True, timeout=420)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        again = subprocess.run([script, "up"], env=env, capture_output=True, text=True, timeout=420)
        assert (
            "server: already running" in again.stdout and "worker: already running" in again.stdout
        )
        yield env, home
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, text=True, timeout=120)
        for name in ("server", "worker"):
            assert not (home / "stack" / f"{name}.pid").exists()


def _deploy_run(env, spec: Path):
    return subprocess.run(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            "release/adult",
            "--param",
            f"spec_path={spec}",
            "--watch",
            "--watch-timeout",
            "500",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_deployment_run_publishes_and_a_failing_gate_fails(stack, tmp_path, spec_factory):
    env, home = stack
    spec = adult_spec_for(tmp_path)
    ok = _deploy_run(env, spec)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "Completed" in ok.stdout
    store = ReleaseStore(str(tmp_path / "releases"))
    assert store.manifest("adult")["privacy"]["epsilon"] == pytest.approx(1.0)

    strict = spec_factory(gate={"max_tvd_2way": 1e-6})
    bad = _deploy_run(env, strict)
    assert bad.returncode != 0 and "Failed" in bad.stdout
    assert ReleaseStore(str(strict.parent / "store")).releases() == []

    # Leak scan: Prefect's database, its result storage and the stack's logs.
    real = pd.read_csv(
        ROOT / "data" / "adult" / "adult_train.csv", keep_default_na=False, na_values=[""]
    )
    counts = real["fnlwgt"].value_counts()
    rare = [str(v) for v in counts[counts == 1].index if v > 1_000_000][:50]
    small = pd.read_csv(strict.parent / "data" / "small.csv", dtype=str)
    needles = [v.encode() for v in rare]
    needles += [v.encode() for v in small["score"].dropna() if len(v) >= 15][:50]
    needles.append(",".join(str(v) for v in real.iloc[0].tolist()).encode())
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("prefect.db") for p in files)
    # Prefect persists a failed run's exception; only our typed errors may be there.
    for stored in (home / "storage").rglob("*") if (home / "storage").exists() else []:
        if stored.is_file():
            assert b"synthrelease.errors" in base64.b64decode(stored.read_bytes()), stored
    blob = b"".join(p.read_bytes() for p in files)
    leaked = [n for n in needles if n in blob]
    assert leaked == []
