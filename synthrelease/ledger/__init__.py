"""The budget ledger: every spend of a table's lifetime privacy budget, in a database.

(Over 300 lines: one class, every write of the ledger under its row locks; the schema
and the reads are in ``schema.py`` and ``reads.py``.)

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

import os
import uuid
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError as DuplicateKey
from sqlalchemy.exc import SQLAlchemyError

from synthrelease.errors import BudgetExceededError, LedgerError
from synthrelease.ledger.reads import LedgerReads
from synthrelease.ledger.schema import (
    COUNTED,
    TOLERANCE,
    BudgetChange,
    Spend,
    TableSummary,
    changes,
    make_engine,
    metadata,
    owner_id,
    refuse_other_budget,
    spends,
    tables,
    utc_now,
)
from synthrelease.private.workspace import Workspace
from synthrelease.spec import Budget, ReleaseSpec

__all__ = [
    "LEDGER_URL_ENV",
    "ledger_at",
    "BudgetChange",
    "BudgetLedger",
    "Spend",
    "TableSummary",
    "open_ledger",
    "owner_id",
    "tables",
    "spends",
    "changes",
]


class BudgetLedger(LedgerReads):
    def __init__(self, url: str) -> None:
        try:
            self.engine = make_engine(url)
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
                if conn.execute(
                    select(tables.c.dataset).where(tables.c.dataset == dataset)
                ).first():
                    return
                conn.execute(tables.insert().values(dataset=dataset, created_at=utc_now()))
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
    def sqlite(cls, path: Path) -> BudgetLedger:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # owner-only from the start
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> BudgetLedger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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
                used_eps, used_delta = (
                    float(x)
                    for x in conn.execute(
                        select(
                            func.coalesce(func.sum(spends.c.epsilon), 0.0),
                            func.coalesce(func.sum(spends.c.delta), 0.0),
                        ).where(spends.c.dataset == dataset, spends.c.status.in_(COUNTED))
                    ).one()
                )
                _refuse_over(dataset, budget, (used_eps, used_delta), (epsilon, delta))
                now = utc_now()
                conn.execute(
                    spends.insert().values(
                        id=rid,
                        dataset=dataset,
                        run_id=run_id,
                        epsilon=epsilon,
                        delta=delta,
                        budget_epsilon=budget.epsilon,
                        budget_delta=budget.delta,
                        status="reserved",
                        reason=None,
                        owner=owner or owner_id(),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None
        return rid

    def _pinned(self, conn: Connection, dataset: str, stated: Budget, *, pin: bool) -> Budget:
        """The table's pinned lifetime budget (row locked). At the first reservation the
        stated budget is pinned (``pin``); afterwards a different stated budget is refused."""
        row = conn.execute(
            select(tables.c.budget_epsilon, tables.c.budget_delta)
            .where(tables.c.dataset == dataset)
            .with_for_update()
        ).first()
        if row is not None and row.budget_epsilon is not None:
            pinned = Budget(epsilon=row.budget_epsilon, delta=row.budget_delta)
        else:
            # Older ledgers: the budget their first reservation recorded is the pinned one.
            first = conn.execute(
                select(spends.c.budget_epsilon, spends.c.budget_delta)
                .where(spends.c.dataset == dataset)
                .order_by(spends.c.created_at)
                .limit(1)
            ).first()
            pinned = (
                stated
                if first is None
                else Budget(epsilon=first.budget_epsilon, delta=first.budget_delta)
            )
            if pin:
                self._write_budget(conn, dataset, pinned, "pinned at the first reservation")
        refuse_other_budget(dataset, pinned=pinned, stated=stated)
        return pinned

    def _write_budget(
        self, conn: Connection, dataset: str, budget: Budget, reason: str, by: str | None = None
    ) -> None:
        conn.execute(
            update(tables)
            .where(tables.c.dataset == dataset)
            .values(budget_epsilon=budget.epsilon, budget_delta=budget.delta)
        )
        conn.execute(
            changes.insert().values(
                id=str(uuid.uuid4()),
                dataset=dataset,
                epsilon=budget.epsilon,
                delta=budget.delta,
                reason=reason[:200],
                by=by or owner_id(),
                created_at=utc_now(),
            )
        )

    def check(self, dataset: str, *, epsilon: float, delta: float, budget: Budget) -> None:
        """Refuse early (no write) if the spec's budget differs from the pinned one or the
        run cannot fit in it; :meth:`reserve` checks again under the lock."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(tables.c.budget_epsilon, tables.c.budget_delta).where(
                        tables.c.dataset == dataset
                    )
                ).first()
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger unreachable ({type(exc).__name__})") from None
        if row is not None and row.budget_epsilon is not None:
            budget = refuse_other_budget(
                dataset,
                stated=budget,
                pinned=Budget(epsilon=row.budget_epsilon, delta=row.budget_delta),
            )
        _refuse_over(dataset, budget, self.spent(dataset), (epsilon, delta))

    def set_budget(
        self, dataset: str, *, epsilon: float, delta: float, reason: str, by: str | None = None
    ) -> None:
        """The custodian's explicit, recorded change of a table's lifetime budget."""
        budget = Budget(epsilon=epsilon, delta=delta)
        if not reason or not reason.strip():
            raise LedgerError("a budget change needs a reason (it is recorded)")
        self._ensure_table_row(dataset)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    select(tables.c.dataset).where(tables.c.dataset == dataset).with_for_update()
                )
                self._write_budget(conn, dataset, budget, reason.strip(), by)
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def _settle(
        self, reservation: str, status: str, reason: str | None, private_reason: str | None = None
    ) -> None:
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
                    .values(
                        status=status,
                        reason=reason,
                        updated_at=utc_now(),
                        private_reason=(private_reason or None) and private_reason[:400],
                    )
                )
        except SQLAlchemyError as exc:
            raise LedgerError(f"budget ledger write failed ({type(exc).__name__})") from None

    def commit(self, reservation: str) -> None:
        self._settle(reservation, "committed", "published")

    def mark_spent(
        self, reservation: str, *, reason: str, private_reason: str | None = None
    ) -> None:
        self._settle(reservation, "spent", reason[:200], private_reason)

    def void(self, reservation: str, *, reason: str) -> None:
        """Only for a run that read no row (the caller's duty: see pipeline.fail)."""
        self._settle(reservation, "voided", reason[:200])


def _refuse_over(
    dataset: str, budget: Budget, used: tuple[float, float], asked: tuple[float, float]
) -> None:
    """:class:`BudgetExceededError` if ``used + asked`` passes the lifetime ``budget``."""
    (used_eps, used_delta), (epsilon, delta) = used, asked
    if (
        used_eps + epsilon > budget.epsilon + TOLERANCE
        or used_delta + delta > budget.delta + TOLERANCE
    ):
        raise BudgetExceededError(
            f"budget of table {dataset!r} would be exceeded: spent epsilon {used_eps:.4g} "
            f"of {budget.epsilon:.4g} and delta {used_delta:.3g} of {budget.delta:.3g}; "
            f"this run asks epsilon {epsilon:.4g}, delta {delta:.3g}. Nothing was run."
        )


LEDGER_URL_ENV = "SYNTHRELEASE_LEDGER_URL"


def open_ledger(spec: ReleaseSpec) -> BudgetLedger:
    """The ledger that charges runs of ``spec``: see :func:`ledger_at`."""
    return ledger_at(spec.workspace.path, url_env=spec.workspace.ledger_url_env)


def ledger_at(workspace: Path, *, url_env: str | None = None) -> BudgetLedger:
    """The budget ledger, in this order:

    1. ``$SYNTHRELEASE_LEDGER_URL``, the custodian's: when set it wins over anything a
       spec says, so a spec cannot point its runs at a fresh, empty ledger (set it
       wherever specs come from someone else);
    2. the database named by the environment variable ``url_env``
       (``workspace.ledger_url_env``, e.g. PostgreSQL);
    3. SQLite in the workspace.
    """
    url = os.environ.get(LEDGER_URL_ENV)
    if url:
        return BudgetLedger(url)
    if url_env:
        url = os.environ.get(url_env)
        if not url:
            raise LedgerError(
                f"environment variable {url_env} (workspace.ledger_url_env) is not set"
            )
        return BudgetLedger(url)
    return BudgetLedger.sqlite(Workspace(workspace).ensure().ledger_path)
