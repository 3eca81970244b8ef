"""The ledger's reads: entries, spends, summaries, pinned budgets and their changes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from synthrelease.errors import LedgerError
from synthrelease.ledger.schema import (
    COUNTED,
    BudgetChange,
    Spend,
    TableSummary,
    changes,
    spends,
    tables,
)
from synthrelease.spec import Budget


class LedgerReads:
    """Read-only queries over the ledger's database (:class:`BudgetLedger` adds writes)."""

    engine: Engine

    def entry(self, reservation: str) -> Spend:
        for e in self.entries():
            if e.id == reservation:
                return e
        raise LedgerError(f"no reservation {reservation}")

    def entries(self, dataset: str | None = None) -> list[Spend]:
        stmt = select(spends).order_by(spends.c.created_at)
        if dataset is not None:
            stmt = stmt.where(spends.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [
                Spend(
                    r.id,
                    r.dataset,
                    r.run_id,
                    r.epsilon,
                    r.delta,
                    r.status,
                    r.reason,
                    r.created_at,
                    r.owner,
                    r.private_reason,
                )
                for r in conn.execute(stmt)
            ]

    def spent(self, dataset: str) -> tuple[float, float]:
        counted = [e for e in self.entries(dataset) if e.status in COUNTED]
        return sum(e.epsilon for e in counted), sum(e.delta for e in counted)

    def summary(self) -> list[TableSummary]:
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(spends).order_by(spends.c.created_at)))
        out: dict[str, dict] = {}
        for r in rows:
            s = out.setdefault(
                r.dataset,
                {
                    "epsilon": 0.0,
                    "delta": 0.0,
                    "committed": 0,
                    "spent": 0,
                    "reserved": 0,
                    "voided": 0,
                    "budget_epsilon": None,
                    "budget_delta": None,
                },
            )
            s[r.status] += 1
            s["budget_epsilon"], s["budget_delta"] = r.budget_epsilon, r.budget_delta
            if r.status in COUNTED:
                s["epsilon"] += r.epsilon
                s["delta"] += r.delta
        with self.engine.connect() as conn:
            pinned = {
                r.dataset: (r.budget_epsilon, r.budget_delta)
                for r in conn.execute(select(tables))
                if r.budget_epsilon is not None
            }
        for name, (eps, delta) in pinned.items():
            if name in out:
                out[name]["budget_epsilon"], out[name]["budget_delta"] = eps, delta
        return [TableSummary(dataset=k, **v) for k, v in sorted(out.items())]

    def budget(self, dataset: str) -> Budget | None:
        """The pinned lifetime budget of a table, or None before its first reservation."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tables.c.budget_epsilon, tables.c.budget_delta).where(
                    tables.c.dataset == dataset
                )
            ).first()
        if row is None or row.budget_epsilon is None:
            return None
        return Budget(epsilon=row.budget_epsilon, delta=row.budget_delta)

    def budget_changes(self, dataset: str | None = None) -> list[BudgetChange]:
        stmt = select(changes).order_by(changes.c.created_at)
        if dataset is not None:
            stmt = stmt.where(changes.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [
                BudgetChange(r.dataset, r.epsilon, r.delta, r.reason, r.by, r.created_at)
                for r in conn.execute(stmt)
            ]
