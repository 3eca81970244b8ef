"""The budget ledger: refusals, settlement, and concurrency on a real SQLite file."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthrelease.errors import BudgetExceededError, LedgerError
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import Budget

BUDGET = Budget(epsilon=3.0, delta=1e-5)


@pytest.fixture
def ledger(tmp_path):
    led = BudgetLedger.sqlite(tmp_path / "ledger.sqlite")
    yield led
    led.close()


def test_reserve_commit_and_refusal(ledger):
    a = ledger.reserve("t", epsilon=1.0, delta=1e-6, budget=BUDGET, run_id="r1")
    ledger.commit(a)
    b = ledger.reserve("t", epsilon=1.5, delta=1e-6, budget=BUDGET, run_id="r2")
    assert ledger.spent("t") == pytest.approx((2.5, 2e-6))
    with pytest.raises(BudgetExceededError, match="would be exceeded") as info:
        ledger.reserve("t", epsilon=1.0, delta=1e-6, budget=BUDGET, run_id="r3")
    assert "Nothing was run" in str(info.value)
    ledger.mark_spent(b, reason="GateFailedError")
    assert [e.status for e in ledger.entries("t")] == ["committed", "spent"]
    # exactly up to the budget is allowed
    ledger.reserve("t", epsilon=0.5, delta=1e-6, budget=BUDGET, run_id="r4")


def test_voided_reservations_do_not_count_but_spent_ones_do(ledger):
    a = ledger.reserve("t", epsilon=2.0, delta=0, budget=BUDGET, run_id="r1")
    ledger.void(a, reason="SchemaMismatchError before training")
    assert ledger.spent("t") == (0.0, 0.0)
    b = ledger.reserve("t", epsilon=2.0, delta=0, budget=BUDGET, run_id="r2")
    ledger.mark_spent(b, reason="crash")
    assert ledger.spent("t") == (2.0, 0.0)
    with pytest.raises(LedgerError, match="already spent"):
        ledger.void(b, reason="refund attempt")


def test_delta_budget_is_enforced_too(ledger):
    with pytest.raises(BudgetExceededError):
        ledger.reserve("t", epsilon=0.1, delta=2e-5, budget=BUDGET, run_id="r1")


def test_tables_are_separate_and_summarised(ledger):
    ledger.commit(ledger.reserve("a", epsilon=1.0, delta=1e-6, budget=BUDGET, run_id="r"))
    ledger.reserve("b", epsilon=3.0, delta=1e-6, budget=BUDGET, run_id="r")
    rows = {r.dataset: r for r in ledger.summary()}
    assert rows["a"].epsilon == 1.0 and rows["a"].committed == 1
    assert rows["b"].epsilon == 3.0 and rows["b"].reserved == 1


def _reserve_in_process(path, queue):
    led = BudgetLedger.sqlite(path)
    try:
        led.reserve(
            "shared", epsilon=1.0, delta=0.0, budget=BUDGET, run_id=mp.current_process().name
        )
        queue.put("ok")
    except BudgetExceededError:
        queue.put("refused")
    finally:
        led.close()


def test_concurrent_processes_cannot_overspend(tmp_path):
    path = tmp_path / "ledger.sqlite"
    BudgetLedger.sqlite(path).close()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_process, args=(path, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcomes = sorted(queue.get(timeout=5) for _ in procs)
    assert outcomes.count("ok") == 3 and outcomes.count("refused") == 3
    led = BudgetLedger.sqlite(path)
    assert led.spent("shared") == (3.0, 0.0)
    led.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.01, 2.0), st.sampled_from(["commit", "spend", "void", "open"])),
        max_size=15,
    )
)
def test_ledger_never_exceeds_the_budget(tmp_path_factory, ops):
    led = BudgetLedger.sqlite(tmp_path_factory.mktemp("l") / "l.sqlite")
    try:
        for eps, outcome in ops:
            try:
                rid = led.reserve("t", epsilon=eps, delta=0.0, budget=BUDGET, run_id="r")
            except BudgetExceededError:
                continue
            if outcome == "commit":
                led.commit(rid)
            elif outcome == "spend":
                led.mark_spent(rid, reason="x")
            elif outcome == "void":
                led.void(rid, reason="x")
            assert led.spent("t")[0] <= BUDGET.epsilon + 1e-9
    finally:
        led.close()
