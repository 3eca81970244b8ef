"""Counting inside PostgreSQL: a SQL source whose rows never leave the database.

Trusted reader. Where the source is a PostgreSQL table or query, the generator needs
only marginal counts (MST, AIM: ``counts_only``), every column is declared, the holdout
is split from the source itself, and every column has a database type read natively
(below), the train step does not stream the rows out. Instead, in one database session:

1. **One statement** builds a temporary table of the rows after the declared-domain
   rules (the rules of :mod:`synthrelease.private.domain`, written in SQL), with each
   row's codes of the discretised domain (the arithmetic of
   :class:`~synthrelease.generators.domain.ColumnCoder`, in float8 as numpy computes
   it), its copy key, its side of the holdout split and its sample priority. The split
   is keyed like the file path's: a row's coin is SHA-256 of (the run's key, the row's
   content key, its occurrence number among identical rows), so it is an independent
   Bernoulli coin per row that only the key's holder can predict (the key reaches the
   session by ``COPY``, so it is in no statement's text). The session is one
   ``REPEATABLE READ`` transaction (every statement sees the same rows), rolled back at
   the end: its temporary tables go with it. Nothing runs ``ANALYZE`` on them, so no
   real value reaches the catalogue's statistics.
2. The generator counts through a :class:`~synthrelease.private.codes.CountedCodes`:
   each batch of marginals is one ``GROUP BY GROUPING SETS`` over the training rows'
   codes; only the cells and their counts come back.
3. The out-of-domain counts (``domain.json``) are one aggregate; the checks' bounded
   samples (``sample_rows`` rows of each part, by the keyed priority) are the only rows
   that leave the database, into the private workspace, as on every other path.
4. At publishing, the firewall's row scan (:func:`scan_tables`) rebuilds the table (same
   key, same statement), checks that the source still has the rows it trained on (a
   fingerprint: row count, sum of the copy keys, holdout rows), uploads the tables to be
   released (they are synthetic) and the samples to the session, and asks the database
   the scan's questions: how many of a table's rows equal a training row, a holdout
   row, and whether one equals a real row holding a value seen once in a
   high-resolution column. Only those counts and yes/no answers come back.

**Native types** (the database already typed the values, so no text is parsed):
numerical columns from ``smallint``, ``integer``, ``bigint``, ``real``, ``double
precision`` or ``numeric`` (NaN reads as null, as in pandas); categorical columns
from ``text``, ``character varying`` or an integer type (its integer text, as
:func:`synthrelease.values.label` reads it); boolean columns from ``boolean``;
datetime columns from ``timestamp``, ``timestamptz`` (in UTC) or ``date`` (a date
pandas cannot hold, or an infinite one, cannot be read: dropped, as when streaming); a
``numeric`` beyond float8's range reads as an infinity, as pandas reads it, never as an
error that one row could cause. Text is compared byte for byte (``COLLATE "C"``). Any
other combination, another database or driver (``postgresql+psycopg``, PostgreSQL 14 or
later), DP-SGD or a separate holdout source: the rows are streamed as before
(:func:`plan` says why, in the run's log: names of columns and types, never a value).
Statements go to the driver as written (no parameter processing), so names and labels
holding ``:``, ``%`` or braces stay text.

``tests/test_database.py`` checks, on a real PostgreSQL, that the counts, the out-of-
domain counts and the samples' rules equal the streaming path's on a table built to
break the rules (nulls, NaN, infinities, out-of-bounds values, unknown categories), and
that a release through this path reads no row through the streaming reader.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import FirewallError, SchemaMismatchError, SourceError
from synthrelease.firewall import RowScanPass
from synthrelease.generators.domain import Discretiser
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.codes import CountedCodes
from synthrelease.private.domain import enforce_frame
from synthrelease.private.rowscan import DEFAULT_TOLERANCE, high_resolution, verdict
from synthrelease.private.sources import describe, sql_engine
from synthrelease.private.table import SensitiveTable
from synthrelease.private.workspace import Workspace
from synthrelease.spec import (
    BooleanColumn,
    CategoricalColumn,
    Column,
    DatetimeColumn,
    NumericalColumn,
    Source,
    SqlSource,
)
from synthrelease.values import normalise, utc_bound

log = logging.getLogger(__name__)

NUMBER_TYPES = frozenset({"smallint", "integer", "bigint", "real", "double precision", "numeric"})
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
TEXT_TYPES = frozenset({"text", "character varying"})
TIME_TYPES = frozenset({"timestamp without time zone", "timestamp with time zone", "date"})
STATE_FILE = "database.json"  # the run's private record: fingerprint and split key
ROWS = "sr_rows"  # the session's temporary table
UPLOAD = "sr_upload"
COIN_BITS = 56
FLOAT_MAX = "1.7976931348623157e308"
FLOAT_TINY = "2.4703282292062328e-324"  # half the least subnormal: below it, zero
# the timestamps pandas can hold (ns since 1970 in int64); others read as unreadable
STAMP_MIN, STAMP_MAX = "1677-09-21 00:12:43.145225", "2262-04-11 23:47:16.854775"
MAX_SETS = 1_000  # grouping sets in one statement (PostgreSQL allows 4,096)
MAX_SET_COLUMNS = 30  # columns a batch of grouping sets may name


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    if "\x00" in value:
        raise SchemaMismatchError("a declared label holds a NUL character")
    return "'" + value.replace("'", "''") + "'"


def _finite(raw: str) -> str:
    """A ``numeric`` value as float8 reads it without an error that would depend on one
    row: beyond float8's range it is an infinity, below its least subnormal zero (as
    pandas reads a Decimal)."""
    return (
        f"CASE WHEN {raw} > {FLOAT_MAX} THEN CAST('Infinity' AS float8) "
        f"WHEN {raw} < -{FLOAT_MAX} THEN CAST('-Infinity' AS float8) "
        f"WHEN abs({raw}) < {FLOAT_TINY} THEN CAST(0 AS float8) "
        f"ELSE CAST({raw} AS float8) END"
    )


def _float(value: float) -> str:
    return f"CAST({repr(float(value))!r} AS float8)"


@dataclass(frozen=True)
class _Column:
    """One column in SQL: ``read`` (the database value as synthrelease reads it; in
    the query ``a``), ``value`` over ``read`` (after the column's rule), ``drop`` over
    ``read``, the rule's counts, ``code`` over ``value``, and ``key`` over ``value`` (its
    part of the copy key: equal exactly where :func:`synthrelease.values.row_keys` is)."""

    name: str
    kind: str  # float8 / text / boolean / int8 (datetimes: UTC nanoseconds)
    read: str  # select items of the reading (``name``, and for a datetime ``ok:name``)
    value: str
    drop: str
    clipped: str | None
    other: str | None
    code: str
    db_type: str


def _column(name: str, spec: Column, db_type: str, bins: int, disc: Discretiser) -> _Column:
    raw = f"src.{_ident(name)}"
    r = f"a.{_ident(name)}"
    v = f"b.{_ident(name)}"
    nullable = bool(getattr(spec, "nullable", False))
    keep_null = "TRUE" if nullable else "FALSE"

    def null_code(code: str) -> str:
        return f"CASE WHEN {v} IS NULL THEN {bins} ELSE ({code}) END"

    coder = disc.coders[name]
    if isinstance(spec, NumericalColumn):
        read = f"NULLIF(CAST({_finite(raw) if db_type == 'numeric' else raw} AS float8), CAST('NaN' AS float8))"
        lo, hi = (float(spec.lower), float(spec.upper))  # type: ignore[arg-type]
        outside = f"COALESCE({r} < {_float(lo)} OR {r} > {_float(hi)}, FALSE)"  # null: not
        clip = spec.policy == "clip"
        value = (
            f"CASE WHEN {r} IS NOT NULL THEN LEAST(GREATEST({r}, {_float(lo)}), {_float(hi)}) END"
            if clip
            else r
        )  # GREATEST skips nulls
        drop = f"({r} IS NULL AND NOT {keep_null})" + ("" if clip else f" OR {outside}")
        edges = getattr(spec, "edges", None)
        if edges is not None:
            array = ", ".join(_float(e) for e in edges)
            code = f"width_bucket({v}, ARRAY[{array}])"
        elif coder.integer_steps():
            code = f"CAST(round({v} - {_float(lo)}) AS integer)"
        else:
            step = f"floor(({v} - {_float(lo)}) / {_float(hi - lo)} * {_float(bins)})"
            code = f"CAST(LEAST(GREATEST({step}, 0), {bins - 1}) AS integer)"
        return _Column(
            name,
            "float8",
            f"{read} AS {_ident(name)}",
            value,
            drop,
            outside if clip else None,
            None,
            null_code(code),
            db_type,
        )
    if isinstance(spec, DatetimeColumn):
        if db_type == "timestamp with time zone":
            stamp = f"({raw} AT TIME ZONE 'UTC')"
        else:
            stamp = f"CAST({raw} AS timestamp)"
        ok = _ident("ok:" + name)  # a non-finite date cannot be read: dropped
        held = (
            f"(isfinite({raw}) AND {stamp} BETWEEN TIMESTAMP '{STAMP_MIN}' "
            f"AND TIMESTAMP '{STAMP_MAX}')"
        )
        read = (
            f"CASE WHEN {held} THEN {stamp} END AS {_ident(name)}, "
            f"({raw} IS NULL OR {held}) AS {ok}"
        )
        lo_t, hi_t = (utc_bound(spec.lower), utc_bound(spec.upper))
        lo_s, hi_s = (f"TIMESTAMP '{t.isoformat(sep=' ')}'" for t in (lo_t, hi_t))
        outside = f"COALESCE({r} < {lo_s} OR {r} > {hi_s}, FALSE)"
        clip = spec.policy == "clip"
        value = (
            f"CASE WHEN {r} IS NOT NULL THEN LEAST(GREATEST({r}, {lo_s}), {hi_s}) END"
            if clip
            else r
        )
        ns = f"CAST(extract(epoch FROM {v}) * 1000000000 AS float8)"
        lo_n, hi_n = coder._numeric_bounds()
        step = f"floor(({ns} - {_float(lo_n)}) / {_float(hi_n - lo_n)} * {_float(bins)})"
        code = f"CAST(LEAST(GREATEST({step}, 0), {bins - 1}) AS integer)"
        drop = f"({r} IS NULL AND NOT ({keep_null} AND a.{ok}))"
        drop += "" if clip else f" OR {outside}"
        return _Column(
            name,
            "int8",
            read,
            value,
            drop,
            f"{outside}" if clip else None,
            None,
            null_code(code),
            db_type,
        )
    if isinstance(spec, CategoricalColumn):
        read = f'CAST({raw} AS text) COLLATE "C"'  # compared byte for byte, as Python does
        labels = ", ".join(_text(c) for c in spec.categories or ())
        outside = f"({r} IS NOT NULL AND NOT ({r} = ANY(ARRAY[{labels}]::text[])))"
        if spec.policy == "other" and spec.other is not None:
            value = f"CASE WHEN {outside} THEN {_text(spec.other)} ELSE {r} END"
            drop = f"({r} IS NULL AND NOT {keep_null})"
            other = outside
        else:
            value, drop, other = r, f"({r} IS NULL AND NOT {keep_null}) OR {outside}", None
        all_labels = ", ".join(_text(c) for c in spec.labels)
        code = f"array_position(ARRAY[{all_labels}]::text[], {v}) - 1"
        return _Column(
            name,
            "text",
            f"{read} AS {_ident(name)}",
            value,
            drop,
            None,
            other,
            null_code(code),
            db_type,
        )
    if isinstance(spec, BooleanColumn):
        drop = f"({r} IS NULL AND NOT {keep_null})"
        return _Column(
            name,
            "boolean",
            f"{raw} AS {_ident(name)}",
            r,
            drop,
            None,
            None,
            null_code(f"CAST({v} AS integer)"),
            db_type,
        )
    raise SchemaMismatchError(f"column {name!r}: no SQL reading for its type")


def _native(spec: Column, db_type: str) -> bool:
    if isinstance(spec, NumericalColumn):
        return db_type in NUMBER_TYPES
    if isinstance(spec, CategoricalColumn):
        return db_type in TEXT_TYPES or db_type in INTEGER_TYPES
    if isinstance(spec, BooleanColumn):
        return db_type == "boolean"
    if isinstance(spec, DatetimeColumn):
        return db_type in TIME_TYPES
    return False


@dataclass(frozen=True)
class Plan:
    """How one source is read in the database: its columns in SQL (public: built from
    the spec and the database's column types, no row)."""

    source: SqlSource
    columns: tuple[_Column, ...]
    sizes: tuple[int, ...]  # the domain's (public)
    high: tuple[str, ...]  # high-resolution columns (the row scan's rule 1)
    fraction: float

    def _select(self) -> str:
        return _source_sql(self.source)


def _source_sql(source: SqlSource) -> str:
    """The source as SQL text, sent as it is (no parameter processing): the query as
    written, or every column of the table (named as SQLAlchemy quotes it)."""
    if source.query is not None:
        return source.query
    from sqlalchemy.dialects import postgresql

    assert source.table is not None
    return f"SELECT * FROM {postgresql.dialect().identifier_preparer.quote(source.table)}"


def plan(
    source: Source,
    columns: Mapping[str, Column],
    discretiser: Discretiser | None,
    *,
    counts_only: bool,
    fraction: float | None,
) -> Plan | None:
    """The in-database plan, or None where the rows must be streamed (logged: why).
    Reads the column types from the database (the catalogue), never a row."""
    if not isinstance(source, SqlSource):
        return None
    undeclared = any(not getattr(c, "declared", True) for c in columns.values())
    if not counts_only or discretiser is None or fraction is None or undeclared:
        log.info("sql source: rows streamed (the generator, the domain or the split needs rows)")
        return None
    engine = sql_engine(source)
    try:
        if (engine.dialect.name, engine.dialect.driver) != ("postgresql", "psycopg"):
            log.info(
                "sql source: rows streamed (counting in the database needs postgresql+psycopg)"
            )
            return None
        with _connect(engine, source) as conn:
            version = int(_run(conn, source, "SHOW server_version_num")[0][0])
            if version < 140000:  # bit_xor, an exact extract(epoch)
                log.info("sql source: rows streamed (counting in the database needs PostgreSQL 14)")
                return None
            types = _column_types(conn, source)
    finally:
        engine.dispose()
    for name, spec in columns.items():
        db_type = types.get(name)
        if db_type is None or not _native(spec, db_type):
            log.info(
                "sql source: rows streamed (a column's database type is not read natively)",
                extra={"column": name, "db_type": db_type},
            )
            return None
    coded = tuple(
        _column(name, spec, types[name], discretiser.coders[name].bins, discretiser)
        for name, spec in columns.items()
    )
    sizes = tuple(int(discretiser.sizes[name]) for name in columns)
    return Plan(source, coded, sizes, tuple(high_resolution(columns)), float(fraction))


@contextlib.contextmanager
def _connect(engine: Any, source: SqlSource) -> Iterator[Any]:
    """A psycopg connection of its own (statements are sent as written: no parameter
    processing), in one REPEATABLE READ transaction, rolled back at the end: every
    statement of a session sees the same rows, and nothing is left in the database."""
    try:
        raw = engine.raw_connection()
    except Exception as exc:  # the driver's errors can quote the URL
        raise SourceError(f"{describe(source)}: cannot connect ({type(exc).__name__})") from None
    conn = raw.driver_connection
    try:
        _run(conn, source, "BEGIN ISOLATION LEVEL REPEATABLE READ")
        _run(conn, source, "SET LOCAL extra_float_digits = 1")  # shortest exact float text
        _run(conn, source, "SET LOCAL standard_conforming_strings = on")
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        with contextlib.suppress(Exception):
            raw.close()


def _run(conn: Any, source: SqlSource, sql: str) -> list[Any]:
    """One statement; its rows (none for a command). An error names its type only (a
    database's message can quote a value)."""
    try:
        cursor = conn.execute(sql)
        return list(cursor.fetchall()) if cursor.description is not None else []
    except Exception as exc:
        raise SourceError(f"{describe(source)}: query failed ({type(exc).__name__})") from None


def _column_types(conn: Any, source: SqlSource) -> dict[str, str]:
    _run(
        conn,
        source,
        f"CREATE TEMP VIEW sr_types AS SELECT * FROM ({_source_sql(source)}) AS q LIMIT 0",
    )
    found = _run(
        conn,
        source,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
        "'sr_types' AND table_schema = (SELECT nspname FROM pg_namespace "
        "WHERE oid = pg_my_temp_schema())",
    )
    return {str(n): str(t) for n, t in found}


def _coin(purpose: int) -> str:
    """A keyed uniform draw in [0, 2^56) per row, from its copy key and occurrence; the
    run's key is read from the session's table ``sr_key`` (sent by COPY, so it is in no
    statement's text)."""
    digest = (
        f"sha256((SELECT key FROM sr_key) || decode('{purpose:02x}', 'hex') "
        "|| int8send(w.k) || int8send(w.occ))"
    )
    return (
        f"CAST(CAST(('x' || encode(substr({digest}, 1, 7), 'hex')) AS bit({COIN_BITS})) AS bigint)"
    )


def _build(plan_: Plan) -> str:
    """The statement that builds the session's table of rows (see the module docstring)."""
    cols = plan_.columns
    reads = ", ".join(c.read for c in cols)
    values = ", ".join(f"{c.value} AS {_ident(c.name)}" for c in cols)
    drop = " OR ".join(f"({c.drop})" for c in cols) or "FALSE"
    key_parts = ", ".join(_key_part(f"b.{_ident(c.name)}", c.kind) for c in cols)
    codes = ", ".join(f"CAST({c.code} AS integer) AS c{i}" for i, c in enumerate(cols))
    held = ", ".join(f"b.{_ident(c.name)} AS v{i}" for i, c in enumerate(cols))
    rows = (
        f"SELECT hashtextextended(CAST(ROW({key_parts}) AS text), 0) AS k, {codes}, {held} "
        f"FROM (SELECT {values} FROM (SELECT {reads} FROM ({plan_._select()}) AS src) AS a "
        f"WHERE NOT ({drop})) AS b"
    )
    threshold = round(plan_.fraction * 2**COIN_BITS)
    return (
        f"CREATE TEMP TABLE {ROWS} AS SELECT w.*, "
        f"CAST(({_coin(0)} < {threshold}) AS integer) AS side, {_coin(1)} AS prio "
        f"FROM (SELECT r.*, row_number() OVER (PARTITION BY r.k) AS occ FROM ({rows}) AS r) AS w"
    )


def _key_part(v: str, kind: str) -> str:
    """A column's part of the copy key, over its value ``v`` (of type ``kind``)."""
    if kind == "float8":
        return f"({v} + CAST(0 AS float8))"  # -0.0 as 0.0, as values.numerical reads it
    if kind == "int8":
        return f"CAST(extract(epoch FROM {v}) * 1000000000 AS bigint)"
    return v


def _counts_query(plan_: Plan) -> str:
    """Per column: rows dropped, clipped, put in ``other`` (the streaming path's counts)."""
    parts = []
    reads = ", ".join(c.read for c in plan_.columns)
    for i, c in enumerate(plan_.columns):
        parts.append(f"count(*) FILTER (WHERE {c.drop}) AS d{i}")
        if c.clipped is not None:
            parts.append(f"count(*) FILTER (WHERE ({c.clipped}) AND NOT ({c.drop})) AS c{i}")
        if c.other is not None:
            parts.append(f"count(*) FILTER (WHERE ({c.other}) AND NOT ({c.drop})) AS o{i}")
    return f"SELECT {', '.join(parts)} FROM (SELECT {reads} FROM ({plan_._select()}) AS src) AS a"


class Session:
    """One database session holding the run's table of rows (a context manager): one
    transaction, rolled back at the end, so its temporary tables go with it."""

    def __init__(self, plan_: Plan, *, key: bytes) -> None:
        self.plan = plan_
        self.key = key
        self._stack = contextlib.ExitStack()
        self._conn: Any = None

    def __enter__(self) -> Session:
        source = self.plan.source
        try:
            engine = sql_engine(source)
            self._stack.callback(engine.dispose)
            self._conn = self._stack.enter_context(_connect(engine, source))
            self._exec("CREATE TEMP TABLE sr_key (key bytea)")
            self._copy("COPY sr_key FROM STDIN", [[self.key]])
            self._exec(_build(self.plan))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._conn = None

    def _all(self, sql: str) -> list[Any]:
        return _run(self._conn, self.plan.source, sql)

    _exec = _all

    def _copy(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._conn.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:  # COPY's messages can quote the value
            raise SourceError(
                f"{describe(self.plan.source)}: upload failed ({type(exc).__name__})"
            ) from None

    # ------------------------------------------------------------------ train step
    def fingerprint(self) -> list[int]:
        """(rows, the sum of the copy keys, holdout rows): private, to tell whether the
        source still holds the rows trained on (a sum: repeated rows do not cancel)."""
        row = self._all(
            f"SELECT count(*), coalesce(sum(CAST(k AS numeric)), 0), coalesce(sum(side), 0) "
            f"FROM {ROWS}"
        )[0]
        return [int(x) for x in row]

    def counted(self, *, label: str) -> CountedCodes:
        """The training rows' codes, counted here (while the session is open)."""
        names = [c.name for c in self.plan.columns]
        return CountedCodes(names, self.plan.sizes, self._count, label=label)

    def _count(self, cliques: Sequence[tuple[int, ...]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact counts of the training rows' marginals, in batches of grouping sets."""
        out: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        todo = list(dict.fromkeys(cliques))
        if () in todo:
            total = self._all(f"SELECT count(*) FROM {ROWS} WHERE side = 0")[0][0]
            out[()] = (np.zeros((0, 1), dtype=np.int64), np.array([int(total)], dtype=np.int64))
            todo.remove(())
        for batch in _batches(todo):
            used = sorted({a for c in batch for a in c})
            sets = ", ".join("(" + ", ".join(f"c{a}" for a in c) + ")" for c in batch)
            rows = self._all(
                f"SELECT {', '.join(f'c{a}' for a in used)}, count(*) FROM {ROWS} "
                f"WHERE side = 0 GROUP BY GROUPING SETS ({sets})"
            )
            found = np.array(
                [[-1 if x is None else int(x) for x in row] for row in rows], dtype=np.int64
            ).reshape(len(rows), len(used) + 1)
            grouped = found[:, :-1] >= 0  # a code is never null: null marks "not grouped"
            for clique in batch:
                want = np.zeros(len(used), dtype=bool)
                want[[used.index(a) for a in clique]] = True
                mine = (grouped == want).all(axis=1)
                cells = found[mine][:, [used.index(a) for a in clique]].T
                out[clique] = (cells, found[mine, -1])
        return [out[tuple(c)] for c in cliques]

    def domain_counts(self) -> dict[str, dict[str, int]]:
        row = self._all(_counts_query(self.plan))[0]
        names = [
            (i, kind)
            for i, c in enumerate(self.plan.columns)
            for kind in ("dropped", "clipped", "other")
            if kind == "dropped"
            or (kind == "clipped" and c.clipped is not None)
            or (kind == "other" and c.other is not None)
        ]
        counts: dict[str, dict[str, int]] = {}
        for (i, kind), value in zip(names, row):
            entry = counts.setdefault(self.plan.columns[i].name, {"clipped": 0, "dropped": 0})
            entry[kind] = int(value)
        return counts

    def parts(self) -> tuple[int, int]:
        rows = dict(self._all(f"SELECT side, count(*) FROM {ROWS} GROUP BY side"))
        return int(rows.get(0, 0)), int(rows.get(1, 0))

    def sample(self, side: int, rows: int, columns: Mapping[str, Column]) -> pd.DataFrame:
        """A uniform sample of ``rows`` rows of one part (the smallest keyed priorities),
        with the same rules applied as on the streaming path (they hold already)."""
        cols = self.plan.columns
        picked = ", ".join(f"v{i}" for i in range(len(cols)))
        found = self._all(
            f"SELECT {picked} FROM {ROWS} WHERE side = {int(side)} ORDER BY prio LIMIT {int(rows)}"
        )
        frame = pd.DataFrame(
            {c.name: pd.Series([r[i] for r in found], dtype=object) for i, c in enumerate(cols)}
        )
        for c in cols:
            if c.kind == "float8":  # floats, NaN for null, as pandas reads a float8 column
                frame[c.name] = pd.to_numeric(frame[c.name], errors="coerce").astype(float)
            elif c.kind == "int8":
                frame[c.name] = pd.to_datetime(frame[c.name])
        frame, _ = enforce_frame(frame, columns)
        return frame

    # ------------------------------------------------------------------ row scan
    def upload(self, frames: Sequence[pd.DataFrame], columns: Mapping[str, Column]) -> None:
        """The tables to scan (and the samples), each value as :mod:`values` reads it, to a
        temporary table (tab, id, unreadable, values...); datetimes as UTC nanoseconds."""
        cols = self.plan.columns
        defs = ", ".join(f"v{i} {c.kind}" for i, c in enumerate(cols))
        self._exec(
            f"CREATE TEMP TABLE {UPLOAD} (tab integer, id integer, unreadable boolean, {defs})"
        )
        names = [c.name for c in cols]

        def rows() -> Iterator[list[Any]]:
            for tab, frame in enumerate(frames):
                read = [_upload_values(frame[n], columns[n]) for n in names]
                bad = np.zeros(len(frame), dtype=bool)
                for _, unreadable in read:
                    bad |= unreadable
                for i in range(len(frame)):
                    yield [tab, i, bool(bad[i]), *(values[i] for values, _ in read)]

        self._copy(f"COPY {UPLOAD} FROM STDIN", rows())
        key_parts = ", ".join(
            f"u.v{i}" if c.kind == "int8" else _key_part(f"u.v{i}", c.kind)
            for i, c in enumerate(cols)
        )
        self._exec(f"ALTER TABLE {UPLOAD} ADD COLUMN k bigint")
        self._exec(
            f"UPDATE {UPLOAD} AS u SET k = hashtextextended(CAST(ROW({key_parts}) AS text), 0) "
            "WHERE NOT u.unreadable"
        )

    def matches(self) -> dict[int, tuple[int, int]]:
        """Per uploaded table: its rows equal to some training row, to some holdout row."""
        rows = self._all(
            "SELECT m.tab, count(*) FILTER (WHERE m.tr), count(*) FILTER (WHERE m.ho) FROM ("
            f"SELECT u.tab, u.id, bool_or(r.side = 0) AS tr, bool_or(r.side = 1) AS ho "
            f"FROM {UPLOAD} u JOIN {ROWS} r ON r.k = u.k GROUP BY u.tab, u.id) AS m "
            "GROUP BY m.tab"
        )
        return {int(t): (int(a), int(b)) for t, a, b in rows}

    def copies(self, tabs: Sequence[int]) -> set[int]:
        """The uploaded tables holding a row equal to a real row with a value seen once
        (in all real rows) in a high-resolution column (the row scan's rule 1)."""
        high = [i for i, c in enumerate(self.plan.columns) if c.name in self.plan.high]
        if not high or not tabs:
            return set()
        listed = ", ".join(str(int(t)) for t in tabs)
        vals = ", ".join(f"r.v{i}" for i in high)
        once = " OR ".join(
            f"c.v{i} IN (SELECT r.v{i} FROM {ROWS} r WHERE r.v{i} IN "
            f"(SELECT v{i} FROM cand) GROUP BY r.v{i} HAVING count(*) = 1)"
            for i in high
        )
        rows = self._all(
            f"WITH cand AS (SELECT DISTINCT r.k, {vals} FROM {ROWS} r "
            f"WHERE r.k IN (SELECT k FROM {UPLOAD} WHERE tab IN ({listed}) AND NOT unreadable)), "
            f"dist AS (SELECT c.k FROM cand c WHERE {once}) "
            f"SELECT DISTINCT u.tab FROM {UPLOAD} u JOIN dist d ON d.k = u.k "
            f"WHERE u.tab IN ({listed})"
        )
        return {int(t) for (t,) in rows}


def _batches(cliques: list[tuple[int, ...]]) -> Iterator[list[tuple[int, ...]]]:
    """Cliques in batches naming at most MAX_SET_COLUMNS columns between them."""
    batch: list[tuple[int, ...]] = []
    used: set[int] = set()
    for clique in cliques:
        if batch and (len(used | set(clique)) > MAX_SET_COLUMNS or len(batch) >= MAX_SETS):
            yield batch
            batch, used = [], set()
        batch.append(clique)
        used |= set(clique)
    if batch:
        yield batch


def _upload_values(values: pd.Series, column: Column) -> tuple[list[Any], np.ndarray]:
    """A column's values as the database holds them (None for null), and which could not
    be read (such a row equals no real row: a real row's values are always read)."""
    norm = normalise(values, column)
    readable = norm.readable
    out: list[Any]
    if isinstance(column, DatetimeColumn):  # UTC nanoseconds, as the key reads them
        ns = norm.values.to_numpy(dtype="datetime64[ns]").view(np.int64)
        out = [int(ns[i]) if ok else None for i, ok in enumerate(readable)]
    elif isinstance(column, NumericalColumn):
        x = norm.values.to_numpy(dtype=np.float64, na_value=np.nan)
        out = [float(x[i]) if ok else None for i, ok in enumerate(readable)]
    elif isinstance(column, BooleanColumn):
        b = norm.values
        out = [bool(b.iloc[i]) if ok else None for i, ok in enumerate(readable)]
    else:
        t = norm.values
        out = [str(t.iloc[i]) if ok else None for i, ok in enumerate(readable)]
    return out, norm.unreadable


# ---------------------------------------------------------------------- the steps
def ingest(
    session: Session,
    *,
    root: Path,
    label: str,
    columns: Mapping[str, Column],
    sample_rows: int,
    sample_paths: tuple[Path, Path | None],
) -> tuple[CountedCodes, dict[str, dict[str, int]], tuple[int, int]]:
    """The train step's reading, in the database: counts of the rules, the parts' row
    counts, the samples; returns the training codes to count from. Writes the run's
    private record (fingerprint, key) to ``root`` for :func:`scan_tables`."""
    rows = session.parts()
    if rows[0] == 0 or rows[1] == 0:
        part = "holdout" if rows[0] else "training"
        raise SchemaMismatchError(f"the {part} part of {label} has too few rows")
    counts = session.domain_counts()
    for side, target in enumerate(sample_paths):
        if target is not None:
            frame = session.sample(side, sample_rows, columns)
            Workspace(target.parent).save_table(SensitiveTable(frame, label="sample"), target)
    private_dir(root)
    record = {"fingerprint": session.fingerprint(), "key": session.key.hex()}
    path = root / STATE_FILE
    with open(_create(path), "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    return session.counted(label=f"{label}:train"), counts, rows


def _create(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)


def in_database(root: Path) -> bool:
    """Whether the run's source was counted in the database (its record exists)."""
    return (root / STATE_FILE).exists()


def scan_tables(
    tables: Mapping[str, Path],
    *,
    plan_: Plan,
    root: Path,
    columns: Mapping[str, Column],
    train_sample: SensitiveTable,
    holdout_sample: SensitiveTable,
    tolerance: float = DEFAULT_TOLERANCE,
) -> RowScanPass:
    """The firewall's row scan (:func:`synthrelease.private.rowscan.scan_tables`'s rules)
    against the rows in the database: pass, or :class:`FirewallError` naming the table."""
    record = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    scanned: list[tuple[str, str, pd.DataFrame]] = []
    for rel, path in tables.items():
        data = Path(path).read_bytes()
        frame = pd.read_parquet(io.BytesIO(data))
        missing = [n for n in columns if n not in frame.columns]
        if missing:
            raise FirewallError(f"row scan: a table lacks the declared column {missing[0]!r}")
        scanned.append((rel, hashlib.sha256(data).hexdigest(), frame))
    train_s, holdout_s = train_sample.reveal(), holdout_sample.reveal()
    with Session(plan_, key=bytes.fromhex(record["key"])) as session:
        if session.fingerprint() != [int(x) for x in record["fingerprint"]]:
            raise FirewallError(
                "row scan: the source no longer holds the rows it trained on; nothing was published"
            )
        frames = [frame for _, _, frame in scanned] + [train_s, holdout_s]
        session.upload(frames, columns)
        found = session.matches()
        copies = session.copies(list(range(len(scanned))))
    n = len(scanned)
    t_rows, h_rows = len(train_s), len(holdout_s)
    baseline_t = found.get(n + 1, (0, 0))[0] / h_rows if h_rows else 0.0
    baseline_h = found.get(n, (0, 0))[1] / t_rows if t_rows else 0.0
    for tab, (rel, _, frame) in enumerate(scanned):
        in_train, in_holdout = found.get(tab, (0, 0))
        rows = len(frame)
        verdict(
            rel,
            copies=tab in copies,
            shares=(in_train / rows, in_holdout / rows) if rows else (0.0, 0.0),
            baselines=(baseline_t, baseline_h),
            tolerance=tolerance,
        )
    passed = frozenset(digest for _, digest, _ in scanned)
    log.info("row scan passed", extra={"tables": len(passed)})
    return RowScanPass(tables=passed)
