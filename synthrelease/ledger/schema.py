"""The ledger's database: tables, row types, the engine, and the budget comparison.

One SQLAlchemy schema for SQLite (default) and PostgreSQL. ``budget_tables`` pins each
table's lifetime budget, ``budget_spends`` holds every reservation and how it was
settled, ``budget_changes`` every change of a lifetime budget (who, when, why).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    MetaData,
    String,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine

from synthrelease.errors import BudgetPinnedError
from synthrelease.spec import Budget

COUNTED = ("reserved", "committed", "spent")


TOLERANCE = 1e-12


metadata = MetaData()


tables = Table(
    "budget_tables",
    metadata,
    Column("dataset", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the lifetime budget, pinned at the first reservation (NULL: not pinned yet)
    Column("budget_epsilon", Float, nullable=True),
    Column("budget_delta", Float, nullable=True),
)


changes = Table(
    "budget_changes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dataset", String(128), nullable=False, index=True),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("by", String(128), nullable=True),
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
    Column("private_reason", String(400), nullable=True),
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
    private_reason: str | None = None


@dataclass(frozen=True)
class BudgetChange:
    dataset: str
    epsilon: float
    delta: float
    reason: str
    by: str | None
    created_at: dt.datetime


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


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str) -> Engine:
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


def refuse_other_budget(dataset: str, *, pinned: Budget, stated: Budget) -> Budget:
    """The pinned budget, or :class:`BudgetPinnedError` if the spec states another."""
    if not same_budget(pinned, stated):
        raise BudgetPinnedError(
            f"table {dataset!r} has a lifetime budget of epsilon {pinned.epsilon:g}, "
            f"delta {pinned.delta:g} in the ledger, but the spec states epsilon "
            f"{stated.epsilon:g}, delta {stated.delta:g}; a spec cannot change it. "
            f"The custodian can, with: synthrelease budget set {dataset} --epsilon E "
            "--delta D --reason '...' (recorded). Nothing was run."
        )
    return pinned


def same_budget(a: Budget, b: Budget) -> bool:
    return (
        abs(a.epsilon - b.epsilon) <= 1e-9 * max(1.0, a.epsilon)
        and abs(a.delta - b.delta) <= 1e-12 + 1e-9 * a.delta
    )
