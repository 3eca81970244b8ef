"""The budget ledger: every spend of a table's lifetime privacy budget, in a database.

One SQLAlchemy implementation (SQLite by default, PostgreSQL by URL). A run *reserves*
its (epsilon, delta) before it touches the data; the reservation is then

- ``committed`` when the release is published,
- ``spent`` when the run failed after a DP mechanism saw the rows (never refunded),
- ``voided`` only when the run stopped before any DP mechanism ran (e.g. the table did
  not match the declared schema): nothing about the data left the workspace.

Reserved, committed and spent entries all count against the budget (basic composition:
epsilons and deltas add up). Reserving takes a write lock, so two concurrent runs that
together would exceed the budget cannot both start.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from synthrelease.errors import BudgetExceededError, LedgerError
from synthrelease.spec import Budget

COUNTED = ("reserved", "committed", "spent")
_TOL = 1e-12

metadata = MetaData()
tables = Table(
    "budget_tables",
    metadata,
    Column("dataset", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
spends = Table(
    "budget_spends",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dataset", String(128), nullable=False, index=True),
    Column("run_id", String(64), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("budget_epsilon", Float, nullable=False),
    Column("budget_delta", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(200), nullable=True),
    Column("owner", String(128), nullable=True),  # host:pid of the reserving process
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def owner_id() -> str:
    """``host:pid`` of this process: lets a later run tell that a reservation's run died."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Spend:
    id: str
    dataset: str
    run_id: str
    epsilon: float
    delta: float
    status: str
    reason: str | None
    created_at: dt.datetime
    owner: str | None = None


@dataclass(frozen=True)
class TableSummary:
    dataset: str
    epsilon: float  # reserved + committed + spent
    delta: float
    committed: int
    spent: int
    reserved: int
    voided: int
    budget_epsilon: float | None
    budget_delta: float | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling defers locks; take the write lock at BEGIN
        # so that reserve() is serialised between processes.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA busy_timeout = 30000")

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class BudgetLedger:
    def __init__(self, url: str) -> None:
        try:
            self.engine = _make_engine(url)
            for attempt in range(3):  # concurrent first use may race on CREATE TABLE
                try:
                    metadata.create_all(self.engine)
                    break
                except SQLAlchemyError:
                    if attempt == 2:
                        raise
            self._migrate()
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger unreachable ({type(exc).__name__})") from None

    def _ensure_table_row(self, dataset: str) -> None:
        from sqlalchemy.exc import IntegrityError as DuplicateKey

        try:
            with self.engine.begin() as conn:
                if conn.execute(select(tables.c.dataset).where(tables.c.dataset == dataset)).first():
                    return
                conn.execute(tables.insert().values(dataset=dataset, created_at=_now()))
        except DuplicateKey:
            pass  # another process registered it first
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def _migrate(self) -> None:
        from sqlalchemy import inspect, text

        columns = {c["name"] for c in inspect(self.engine).get_columns("budget_spends")}
        if "owner" not in columns:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE budget_spends ADD COLUMN owner VARCHAR(128)"))

    @classmethod
    def sqlite(cls, path: Path) -> "BudgetLedger":
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # owner-only from the start
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def reserve(
        self,
        dataset: str,
        *,
        epsilon: float,
        delta: float,
        budget: Budget,
        run_id: str,
        owner: str | None = None,
    ) -> str:
        """Record a spend before the data is touched; refuse if it would exceed the budget."""
        if not (epsilon > 0 and delta >= 0):
            raise LedgerError("a reservation needs epsilon > 0 and delta >= 0")
        rid = str(uuid.uuid4())
        self._ensure_table_row(dataset)
        try:
            with self.engine.begin() as conn:
                # Lock the table's row: concurrent reservations of one table serialise here.
                conn.execute(
                    select(tables.c.dataset).where(tables.c.dataset == dataset).with_for_update()
                )
                used_eps, used_delta = conn.execute(
                    select(
                        func.coalesce(func.sum(spends.c.epsilon), 0.0),
                        func.coalesce(func.sum(spends.c.delta), 0.0),
                    ).where(spends.c.dataset == dataset, spends.c.status.in_(COUNTED))
                ).one()
                if used_eps + epsilon > budget.epsilon + _TOL or used_delta + delta > budget.delta + _TOL:
                    raise BudgetExceededError(
                        f"budget of table {dataset!r} would be exceeded: spent epsilon "
                        f"{used_eps:.4g} of {budget.epsilon:.4g} and delta {used_delta:.3g} "
                        f"of {budget.delta:.3g}; this run asks epsilon {epsilon:.4g}, "
                        f"delta {delta:.3g}. Nothing was run."
                    )
                now = _now()
                conn.execute(
                    spends.insert().values(
                        id=rid, dataset=dataset, run_id=run_id, epsilon=epsilon, delta=delta,
                        budget_epsilon=budget.epsilon, budget_delta=budget.delta,
                        status="reserved", reason=None, owner=owner or owner_id(),
                        created_at=now, updated_at=now,
                    )
                )
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None
        return rid

    def _settle(self, reservation: str, status: str, reason: str | None) -> None:
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(spends.c.status).where(spends.c.id == reservation).with_for_update()
                ).first()
                if row is None:
                    raise LedgerError(f"no reservation {reservation}")
                if row.status != "reserved":
                    if row.status == status:
                        return
                    raise LedgerError(
                        f"reservation {reservation} is already {row.status}, cannot mark {status}"
                    )
                conn.execute(
                    update(spends)
                    .where(spends.c.id == reservation)
                    .values(status=status, reason=reason, updated_at=_now())
                )
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def commit(self, reservation: str) -> None:
        self._settle(reservation, "committed", "published")

    def mark_spent(self, reservation: str, *, reason: str) -> None:
        self._settle(reservation, "spent", reason[:200])

    def void(self, reservation: str, *, reason: str) -> None:
        self._settle(reservation, "voided", reason[:200])

    # ------------------------------------------------------------------ reads
    def entries(self, dataset: str | None = None) -> list[Spend]:
        stmt = select(spends).order_by(spends.c.created_at)
        if dataset is not None:
            stmt = stmt.where(spends.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [
                Spend(r.id, r.dataset, r.run_id, r.epsilon, r.delta, r.status, r.reason,
                      r.created_at, r.owner)
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
                {"epsilon": 0.0, "delta": 0.0, "committed": 0, "spent": 0, "reserved": 0,
                 "voided": 0, "budget_epsilon": None, "budget_delta": None},
            )
            s[r.status] += 1
            s["budget_epsilon"], s["budget_delta"] = r.budget_epsilon, r.budget_delta
            if r.status in COUNTED:
                s["epsilon"] += r.epsilon
                s["delta"] += r.delta
        return [TableSummary(dataset=k, **v) for k, v in sorted(out.items())]
