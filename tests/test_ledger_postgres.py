"""The budget ledger on a real PostgreSQL server: same code, same guarantees."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from synthrelease.errors import BudgetExceededError
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import Budget
from synthrelease.store import ReleaseStore

pytestmark = pytest.mark.integration  # a real PostgreSQL server (scripts/ensure-postgres.sh)

BUDGET = Budget(epsilon=10.0, delta=1e-5)


def test_ledger_on_postgres(pg_url):
    led = BudgetLedger(pg_url)
    try:
        rid = led.reserve("pg-basic", epsilon=4.0, delta=1e-6, budget=BUDGET, run_id="r1")
        led.commit(rid)
        rid2 = led.reserve("pg-basic", epsilon=5.0, delta=1e-6, budget=BUDGET, run_id="r2")
        led.mark_spent(rid2, reason="crash")
        with pytest.raises(BudgetExceededError):
            led.reserve("pg-basic", epsilon=2.0, delta=1e-6, budget=BUDGET, run_id="r3")
        assert [e.status for e in led.entries("pg-basic")] == ["committed", "spent"]
        assert led.spent("pg-basic") == pytest.approx((9.0, 2e-6))
    finally:
        led.close()


def _release_in_process(spec_path, url, queue):
    os.environ["LEDGER_URL"] = url
    from synthrelease.run import release

    try:
        release(spec_path)
        queue.put("published")
    except BudgetExceededError:
        queue.put("refused")
    except Exception as exc:  # surfaced in the assertion message
        queue.put(f"error {type(exc).__name__}: {exc}")


def test_two_concurrent_runs_that_would_exceed_the_budget(pg_url, spec_factory, tmp_path):
    """Two runs of one table (separate workspaces, as on two machines; one ledger): each
    asks epsilon 6 of a budget of 10, so exactly one may proceed."""
    paths = []
    for i in range(2):
        path = spec_factory(
            name="pgrace",
            privacy={
                "epsilon": 6.0,
                "delta": 1e-6,
                "noise": "seeded",
                "seed": i,
                "budget": {"epsilon": 10.0, "delta": 1e-5},
            },
            workspace={"path": str(tmp_path / f"ws{i}"), "ledger_url_env": "LEDGER_URL"},
            store={"uri": str(tmp_path / "store")},
        )
        paths.append(str(path))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_release_in_process, args=(p, pg_url, queue)) for p in paths]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    outcomes = sorted(queue.get(timeout=10) for _ in procs)
    assert outcomes == ["published", "refused"], outcomes
    assert len(ReleaseStore(str(tmp_path / "store")).releases()) == 1
    led = BudgetLedger(pg_url)
    try:
        assert led.spent("pgrace")[0] == pytest.approx(6.0)
    finally:
        led.close()


def _reserve(url, queue):
    led = BudgetLedger(url)
    try:
        led.reserve(
            "pg-race", epsilon=1.0, delta=0.0, budget=Budget(epsilon=3.0, delta=0.0), run_id="r"
        )
        queue.put("ok")
    except BudgetExceededError:
        queue.put("refused")
    finally:
        led.close()


def test_many_concurrent_reservations_never_overspend(pg_url):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_reserve, args=(pg_url, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcomes = sorted(queue.get(timeout=10) for _ in procs)
    assert outcomes.count("ok") == 3 and outcomes.count("refused") == 3
