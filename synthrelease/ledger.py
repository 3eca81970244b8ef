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

A table's lifetime budget is *pinned* here at its first reservation: a spec that states
another budget is refused (:class:`BudgetPinnedError`), so editing a YAML file cannot
unlock more spending. The custodian changes it only with :meth:`BudgetLedger.set_budget`
(``synthrelease budget set``), which records who-why-when in ``budget_changes``.

Each settled entry has a public ``reason`` that does not depend on the rows (``published``,
``gate refused``, ``failed after reading the table``) and a ``private_reason`` (the step
and exception type) shown only by ``budget show --entries --private``.
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
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as DuplicateKey
from sqlalchemy.exc import SQLAlchemyError

from synthrelease.errors import BudgetExceededError, BudgetPinnedError, LedgerError
from synthrelease.spec import Budget

COUNTED = ("reserved", "committed", "spent")
_TOL = 1e-12

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
        """Add the columns that older ledgers lack (nullable, so existing rows stay)."""
        wanted = {
            "budget_spends": {"owner": "VARCHAR(128)", "private_reason": "VARCHAR(400)"},
            "budget_tables": {"budget_epsilon": "FLOAT", "budget_delta": "FLOAT"},
        }
        inspector = inspect(self.engine)
        for table, cols in wanted.items():
            have = {c["name"] for c in inspector.get_columns(table)}
            for name, sqltype in cols.items():
                if name not in have:
                    with self.engine.begin() as conn:
                        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sqltype}"))

    @classmethod
    def sqlite(cls, path: Path) -> "BudgetLedger":
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # owner-only from the start
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "BudgetLedger":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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
                budget = self._pinned(conn, dataset, budget, pin=True)
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

    def _pinned(self, conn, dataset: str, stated: Budget, *, pin: bool) -> Budget:
        """The table's pinned lifetime budget (row locked). At the first reservation the
        stated budget is pinned (``pin``); afterwards a different stated budget is refused."""
        row = conn.execute(
            select(tables.c.budget_epsilon, tables.c.budget_delta)
            .where(tables.c.dataset == dataset).with_for_update()
        ).first()
        if row is not None and row.budget_epsilon is not None:
            pinned = Budget(epsilon=row.budget_epsilon, delta=row.budget_delta)
        else:
            # Older ledgers: the budget their first reservation recorded is the pinned one.
            first = conn.execute(
                select(spends.c.budget_epsilon, spends.c.budget_delta)
                .where(spends.c.dataset == dataset).order_by(spends.c.created_at).limit(1)
            ).first()
            pinned = stated if first is None else Budget(
                epsilon=first.budget_epsilon, delta=first.budget_delta)
            if pin:
                self._write_budget(conn, dataset, pinned, "pinned at the first reservation")
        _refuse_other(dataset, pinned=pinned, stated=stated)
        return pinned

    def _write_budget(self, conn, dataset: str, budget: Budget, reason: str,
                      by: str | None = None) -> None:
        conn.execute(update(tables).where(tables.c.dataset == dataset).values(
            budget_epsilon=budget.epsilon, budget_delta=budget.delta))
        conn.execute(changes.insert().values(
            id=str(uuid.uuid4()), dataset=dataset, epsilon=budget.epsilon, delta=budget.delta,
            reason=reason[:200], by=by or owner_id(), created_at=_now()))

    def check(self, dataset: str, *, epsilon: float, delta: float, budget: Budget) -> None:
        """Refuse early (no write) if the spec's budget differs from the pinned one or the
        run cannot fit in it; :meth:`reserve` checks again under the lock."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(tables.c.budget_epsilon, tables.c.budget_delta)
                    .where(tables.c.dataset == dataset)).first()
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger unreachable ({type(exc).__name__})") from None
        if row is not None and row.budget_epsilon is not None:
            budget = _refuse_other(dataset, stated=budget, pinned=Budget(
                epsilon=row.budget_epsilon, delta=row.budget_delta))
        used_eps, used_delta = self.spent(dataset)
        if used_eps + epsilon > budget.epsilon + _TOL or used_delta + delta > budget.delta + _TOL:
            raise BudgetExceededError(
                f"budget of table {dataset!r} would be exceeded: spent epsilon {used_eps:.4g} "
                f"of {budget.epsilon:.4g} and delta {used_delta:.3g} of {budget.delta:.3g}; "
                f"this run asks epsilon {epsilon:.4g}, delta {delta:.3g}. Nothing was run."
            )

    def set_budget(self, dataset: str, *, epsilon: float, delta: float, reason: str,
                   by: str | None = None) -> None:
        """The custodian's explicit, recorded change of a table's lifetime budget."""
        budget = Budget(epsilon=epsilon, delta=delta)
        if not reason or not reason.strip():
            raise LedgerError("a budget change needs a reason (it is recorded)")
        self._ensure_table_row(dataset)
        try:
            with self.engine.begin() as conn:
                conn.execute(select(tables.c.dataset).where(tables.c.dataset == dataset)
                             .with_for_update())
                self._write_budget(conn, dataset, budget, reason.strip(), by)
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def budget(self, dataset: str) -> Budget | None:
        """The pinned lifetime budget of a table, or None before its first reservation."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.c.budget_epsilon, tables.c.budget_delta)
                               .where(tables.c.dataset == dataset)).first()
        if row is None or row.budget_epsilon is None:
            return None
        return Budget(epsilon=row.budget_epsilon, delta=row.budget_delta)

    def budget_changes(self, dataset: str | None = None) -> list[BudgetChange]:
        stmt = select(changes).order_by(changes.c.created_at)
        if dataset is not None:
            stmt = stmt.where(changes.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [BudgetChange(r.dataset, r.epsilon, r.delta, r.reason, r.by, r.created_at)
                    for r in conn.execute(stmt)]

    def _settle(self, reservation: str, status: str, reason: str | None,
                private_reason: str | None = None) -> None:
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
                    .values(status=status, reason=reason, updated_at=_now(),
                            private_reason=(private_reason or None) and private_reason[:400])
                )
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def commit(self, reservation: str) -> None:
        self._settle(reservation, "committed", "published")

    def mark_spent(self, reservation: str, *, reason: str,
                   private_reason: str | None = None) -> None:
        self._settle(reservation, "spent", reason[:200], private_reason)

    def void(self, reservation: str, *, reason: str) -> None:
        """Only for a run that read no row (the caller's duty: see pipeline.fail)."""
        self._settle(reservation, "voided", reason[:200])

    def entry(self, reservation: str) -> Spend:
        for e in self.entries():
            if e.id == reservation:
                return e
        raise LedgerError(f"no reservation {reservation}")

    # ------------------------------------------------------------------ reads
    def entries(self, dataset: str | None = None) -> list[Spend]:
        stmt = select(spends).order_by(spends.c.created_at)
        if dataset is not None:
            stmt = stmt.where(spends.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [
                Spend(r.id, r.dataset, r.run_id, r.epsilon, r.delta, r.status, r.reason,
                      r.created_at, r.owner, r.private_reason)
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
        with self.engine.connect() as conn:
            pinned = {r.dataset: (r.budget_epsilon, r.budget_delta) for r in conn.execute(
                select(tables)) if r.budget_epsilon is not None}
        for name, (eps, delta) in pinned.items():
            if name in out:
                out[name]["budget_epsilon"], out[name]["budget_delta"] = eps, delta
        return [TableSummary(dataset=k, **v) for k, v in sorted(out.items())]


def _refuse_other(dataset: str, *, pinned: Budget, stated: Budget) -> Budget:
    """The pinned budget, or :class:`BudgetPinnedError` if the spec states another."""
    if not _same(pinned, stated):
        raise BudgetPinnedError(
            f"table {dataset!r} has a lifetime budget of epsilon {pinned.epsilon:g}, "
            f"delta {pinned.delta:g} in the ledger, but the spec states epsilon "
            f"{stated.epsilon:g}, delta {stated.delta:g}; a spec cannot change it. "
            f"The custodian can, with: synthrelease budget set {dataset} --epsilon E "
            "--delta D --reason '...' (recorded). Nothing was run."
        )
    return pinned


def _same(a: Budget, b: Budget) -> bool:
    return abs(a.epsilon - b.epsilon) <= 1e-9 * max(1.0, a.epsilon) and abs(
        a.delta - b.delta) <= 1e-12 + 1e-9 * a.delta
