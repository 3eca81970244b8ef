"""The two-table test (issue 12): the same spec on neighbouring tables, public outputs
compared byte for byte after masking ids, times and the temporary folder.

The attack of the review: narrow bounds with ``out_of_domain: drop`` on ``age`` and a
holdout source whose only row is dropped. Table A has no row in the bounds (the main
table ends up empty); table B is A plus one row in the bounds (the holdout ends up
empty). On ``main`` the two failed with different messages, and both were voided: a free
yes/no question ("is there a row with age 37?"). Now both are charged and every public
channel is the same: exit code, stdout, stderr, the store, the ledger's public view, and,
through Prefect, the flow and task states, the logs and the artifacts in its database.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SMALL_COLUMNS, make_table

CLI = [sys.executable, "-m", "synthrelease.cli"]
_MASKS = [
    (re.compile(r"\d{8}T\d{6}Z(-[0-9a-f]{8})?"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<clock>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b(vm|[\w.-]+):\d+\)"), "<owner>)"),
    (re.compile(r"\d+\.\d+s\b"), "<secs>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),  # the temporary server
    (re.compile(r"(_task)-[0-9a-f]{8}\b"), r"\1-<key>"),  # Prefect's task keys
    (re.compile(r"\b[0-9a-f]{32}\b"), "<hex>"),  # Prefect's storage keys
    (re.compile(r"'[a-z]+-[a-z]+' - "), "<runname> - "),  # Prefect's generated run names
]


def _mask(text: str, root: Path) -> str:
    text = text.replace(str(root), "<tmp>")
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def _tables(base: Path) -> dict[str, Path]:
    """Table A (no row with age in [37, 38]) and table B = A + one such row."""
    a = make_table(400, seed=5)
    a = a[~a["age"].between(37, 38)].reset_index(drop=True)
    probe = a.iloc[[0]].assign(age=37)
    out = {}
    for name, frame in (("A", a), ("B", a._append(probe, ignore_index=True))):
        folder = base / name
        (folder / "data").mkdir(parents=True)
        frame.to_csv(folder / "data" / "t.csv", index=False)
        a.iloc[[1]].assign(age=90).to_csv(folder / "data" / "holdout.csv", index=False)
        columns = copy.deepcopy(SMALL_COLUMNS)
        columns["age"].update(lower=37, upper=38, out_of_domain="drop")
        raw = {
            "name": "probe",
            "source": {"kind": "csv", "path": "data/t.csv"},
            "schema": {"columns": columns},
            "privacy": {
                "epsilon": 1.0,
                "delta": 1e-6,
                "noise": "seeded",
                "seed": 3,
                "budget": {"epsilon": 5.0, "delta": 1e-5},
            },
            "generator": {"name": "mst", "params": {"bins": 8}},
            "holdout": {"source": {"kind": "csv", "path": "data/holdout.csv"}},
            "synthetic_rows": 500,
            "workspace": {"path": "ws"},
            "store": {"uri": "store"},
        }
        (folder / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        out[name] = folder
    return out


def _cli(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        CLI + list(args),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def _public(folder: Path, proc: subprocess.CompletedProcess) -> dict[str, object]:
    """Everything a non-custodian could see of the run, masked."""
    ledger = _cli(folder, "budget", "show", "--spec", "spec.yaml", "--entries")
    store = folder / "store"
    files = (
        sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
        if store.exists()
        else []
    )
    return {
        "exit": proc.returncode,
        "stdout": _mask(proc.stdout, folder),
        "stderr": _mask(proc.stderr, folder),
        "store": files,
        "ledger": _mask(ledger.stdout, folder),
    }


def _prefect_db(home: Path, root: Path) -> dict[str, object]:
    (db,) = list(home.rglob("*.db"))
    with sqlite3.connect(db) as conn:
        flows = conn.execute("select state_type, state_name from flow_run").fetchall()
        flow_msgs = conn.execute(
            "select s.message from flow_run_state s order by s.timestamp"
        ).fetchall()
        tasks = conn.execute(
            "select task_key, state_type from task_run order by expected_start_time"
        ).fetchall()
        task_msgs = conn.execute(
            "select s.name, s.message from task_run_state s order by s.timestamp"
        ).fetchall()
        logs = conn.execute("select name, level, message from log order by timestamp").fetchall()
        artifacts = conn.execute("select key, type, data from artifact").fetchall()
    return json.loads(
        _mask(
            json.dumps(
                {
                    "flows": flows,
                    "flow_messages": flow_msgs,
                    "tasks": sorted(tasks),
                    "task_messages": sorted(map(tuple, task_msgs)),
                    "logs": logs,
                    "artifacts": artifacts,
                }
            ).replace(str(home), "<prefect-home>"),
            root,
        )
    )


def test_direct_engine_neighbouring_tables_look_the_same(tmp_path):
    folders = _tables(tmp_path)
    seen = {}
    for name, folder in folders.items():
        proc = _cli(folder, "run", "spec.yaml", "--engine", "direct")
        seen[name] = _public(folder, proc)
    a, b = seen["A"], seen["B"]
    assert a["exit"] == 4, a["stderr"]
    assert "failed after reading the table" in a["stderr"] and "charged" in a["stderr"]
    assert "spent" in a["ledger"] and "voided" not in a["ledger"]
    assert a == b
    # the private reasons differ (that is what the attack would have learnt)
    reasons = [
        next((f / "ws" / "runs").glob("*/failure.txt")).read_text() for f in folders.values()
    ]
    assert "table 'probe'" in reasons[0] and "holdout source" in reasons[1]


@pytest.mark.integration
def test_prefect_neighbouring_tables_look_the_same(tmp_path):
    """Through the Prefect flow on a temporary server: the states, task runs, logs and
    artifacts in Prefect's database are the same for the two tables (with the
    ``synthrelease`` loggers routed to Prefect, as the stack does)."""
    folders = _tables(tmp_path)
    seen = {}
    for name, folder in folders.items():
        home = folder.parent / f"prefect-{name}"
        env = {
            "PREFECT_HOME": str(home),
            "PREFECT_LOGGING_EXTRA_LOGGERS": "synthrelease",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "DO_NOT_TRACK": "1",
            "PREFECT_API_URL": "",
        }
        env = {k: v for k, v in env.items() if v}
        proc = subprocess.run(
            CLI + ["run", "spec.yaml"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
            env={k: v for k, v in {**os.environ, **env}.items() if k != "PREFECT_API_URL"},
        )
        public = _public(folder, proc)
        public["prefect"] = _prefect_db(home, folder)
        seen[name] = public
    a, b = seen["A"], seen["B"]
    assert a["exit"] == 4, a["stderr"][-3000:]
    db = a["prefect"]
    assert db["flows"] and db["flows"][0][0] == "FAILED"
    assert db["logs"], "no log reached Prefect: the comparison would prove nothing"
    assert any("failed after reading the table" in (m[0] or "") for m in db["flow_messages"])
    for key in ("exit", "stdout", "store", "ledger"):
        assert a[key] == b[key], key
    # stderr: the same lines; their interleaving with the Prefect log handler's thread
    # follows the clock (timing is outside the guarantee, docs/threat-model.md), and on a
    # loaded machine (tests in parallel) it varied between the two runs
    assert sorted(str(a["stderr"]).splitlines()) == sorted(str(b["stderr"]).splitlines())
    for key in ("flows", "flow_messages", "tasks", "task_messages", "logs", "artifacts"):
        assert a["prefect"][key] == b["prefect"][key], key
