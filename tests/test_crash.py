"""Crash safety: SIGKILL a run at each stage. No partial release is ever visible, the
ledger stays consistent (the dead run's reservation is settled as spent, never refunded,
and shown as such), its copies of sensitive rows are removed, and a re-run works."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from synthrelease.ledger import BudgetLedger
from synthrelease.run import release
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import ROOT

STAGES = ["after-reserve", "mid-training", "mid-validation", "mid-publish", "before-latest"]


def _entries(spec):
    led = BudgetLedger.sqlite(spec.workspace.path / "ledger.sqlite")
    try:
        return led.entries(spec.name)
    finally:
        led.close()


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_stage(stage, spec_factory, capsys):
    path = spec_factory()
    spec = load_spec(path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "crash_driver.py"), stage, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    store = ReleaseStore(spec.store.uri)
    visible = store.releases()
    if stage == "before-latest":
        # moved into place with its manifest before the kill: complete and verifiable
        assert len(visible) == 1
        store.verify("small", visible[0].version)
    else:
        assert visible == []
    for info in visible:
        store.verify(info.dataset, info.version)
    assert [e.status for e in _entries(spec)] == ["reserved"]  # counted, not refunded

    summary = release(str(path))  # the re-run settles the dead run's reservation
    assert summary.passed and summary.release_id.startswith("small@")
    entries = _entries(spec)
    assert [e.status for e in entries] == ["spent", "committed"]
    assert "failed after reading the table" in entries[0].reason  # the public reason
    assert "run died" in entries[0].private_reason
    assert not list((spec.workspace.path / "runs").glob("*/split/*"))

    from synthrelease.cli import main

    assert main(["budget", "show", "--spec", str(path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("small"))
    assert row.split()[-3:] == ["1", "0", "0"]  # one spent, none open, none voided
    assert main(["budget", "show", "--spec", str(path), "--entries"]) == 0
    out = capsys.readouterr().out
    assert "spent" in out and "run died" not in out and "committed" in out
    assert main(["budget", "show", "--spec", str(path), "--entries", "--private"]) == 0
    assert "run died" in capsys.readouterr().out
