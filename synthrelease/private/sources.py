"""Reading sensitive sources (CSV, Parquet, SQL) into a :class:`SensitiveTable`, and
applying the declared domain to it (:func:`enforce_domain`; the rules are
``private/domain.py``).

Trusted reader. Errors name the source and the column, never a value: a parser's own
message can quote the offending line, so only its type is passed on.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from synthrelease.errors import SchemaMismatchError, SourceError
from synthrelease.private.domain import enforce_frame
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import (
    BooleanColumn,
    CategoricalColumn,
    Column,
    CsvSource,
    ParquetSource,
    Source,
    SqlSource,
)
from synthrelease.values import label

if TYPE_CHECKING:
    from sqlalchemy import Engine, Select, TextClause

    from synthrelease.generators.domain import Discretiser

log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000  # rows a reader holds at a time


def describe(source: object) -> str:
    """A public name for a source (a path or an env var; never a URL with credentials)."""
    if isinstance(source, (CsvSource, ParquetSource)):
        return f"{source.kind} source {source.path}"
    if isinstance(source, SqlSource):
        return f"sql source (${source.url_env})"
    return "source"


def sql_engine(source: SqlSource) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    url = os.environ.get(source.url_env)
    if not url:
        raise SourceError(f"{describe(source)}: environment variable {source.url_env} is not set")
    try:
        return create_engine(url)
    except (ArgumentError, ValueError, ImportError) as exc:
        raise SourceError(
            f"{describe(source)}: the URL in ${source.url_env} is not a usable SQLAlchemy "
            f"URL ({type(exc).__name__})"
        ) from None


def sql_select(source: SqlSource, *, header_only: bool) -> TextClause | Select[Any]:
    from sqlalchemy import literal_column, select, table, text

    if source.query is not None:
        query = text(source.query)
        if header_only:
            return text(f"SELECT * FROM ({source.query}) AS q WHERE 1 = 0")
        return query
    assert source.table is not None  # SqlSource holds exactly one of 'table' and 'query'
    stmt: Select[Any] = select(literal_column("*")).select_from(table(source.table))
    return stmt.where(text("1 = 0")) if header_only else stmt


def _check_file(path: Path, source: object) -> None:
    if not path.exists():
        raise SourceError(f"{describe(source)}: file not found")
    if isinstance(source, ParquetSource) and path.is_dir():
        return  # a partitioned dataset: a directory of Parquet files
    if not path.is_file():
        raise SourceError(f"{describe(source)}: not a file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{describe(source)}: file is not readable")


def read_header(source: object) -> list[str]:
    """Column names only (they are public: the spec declares them). Reads no rows."""
    if isinstance(source, CsvSource):
        _check_file(source.path, source)
        try:
            with open(source.path, newline="", encoding=source.encoding) as fh:
                first = fh.readline()
        except UnicodeDecodeError:
            raise SourceError(
                f"{describe(source)}: the header is not valid {source.encoding} text"
            ) from None
        except OSError as exc:
            raise SourceError(f"{describe(source)}: cannot read ({type(exc).__name__})") from None
        if not first.strip():
            raise SourceError(f"{describe(source)}: the file is empty (no header row)")
        return next(csv.reader(io.StringIO(first), delimiter=source.separator))
    if isinstance(source, ParquetSource):
        _check_file(source.path, source)
        try:
            return list(_parquet_dataset(source).schema.names)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise SourceError(
                f"{describe(source)}: not a readable Parquet file ({type(exc).__name__})"
            ) from None
    if isinstance(source, SqlSource):
        from sqlalchemy.exc import SQLAlchemyError

        engine = sql_engine(source)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sql_select(source, header_only=True)).keys())
        except SQLAlchemyError as exc:
            raise SourceError(f"{describe(source)}: query failed ({type(exc).__name__})") from None
        finally:
            engine.dispose()
    raise SourceError("unknown source kind")


def check_columns(source: object, columns: Mapping[str, object]) -> None:
    """The table's columns must be exactly the declared ones. Reads the header only."""
    names = read_header(source)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaMismatchError(f"{describe(source)}: duplicate column names {dupes}")
    missing = [c for c in columns if c not in names]
    extra = [c for c in names if c not in columns]
    problems = []
    if missing:
        problems.append(f"declared in the spec but missing from the table: {missing}")
    if extra:
        problems.append(f"in the table but not declared in the spec: {extra}")
    if problems:
        raise SchemaMismatchError(f"{describe(source)}: columns " + "; ".join(problems))


def _text_columns(columns: Mapping[str, object]) -> list[str]:
    return [n for n, c in columns.items() if isinstance(c, (CategoricalColumn, BooleanColumn))]


def _parquet_dataset(source: ParquetSource) -> pads.Dataset:
    """A Parquet file, or a directory of them (hive partitions become columns)."""
    return pads.dataset(source.path, format="parquet", partitioning="hive")


def _text_frame(frame: pd.DataFrame, columns: Mapping[str, object]) -> pd.DataFrame:
    """The declared columns, categorical and boolean ones as text (None for null)."""
    frame = frame[list(columns)]
    for name in _text_columns(columns):
        if frame[name].dtype != object:
            values = frame[name].astype(object).where(frame[name].notna(), None)
            frame[name] = values.map(lambda v: v if v is None else label(v))  # 3.0 as "3"
    return frame


def shards(source: Source) -> int:
    """How many shards the source reads in: a Parquet dataset's files (each read on its
    own, in any process), else one (a CSV file or a query is read in order). Reads the
    directory listing only."""
    if isinstance(source, ParquetSource):
        try:
            return max(1, len(_parquet_dataset(source).files))
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{describe(source)}: cannot read ({type(exc).__name__})") from None
    return 1


def _parquet_chunks(
    source: ParquetSource, names: list[str], rows: int, shard: int | None
) -> Iterator[pd.DataFrame]:
    """A Parquet dataset file by file, each file's batches streamed by its own reader
    (pyarrow's dataset scanner held 0.9 GB reading a 10-file dataset of 1M-row groups,
    with its readahead at one; a file reader holds 0.37 GB, flat in the files); a hive
    partition's values are columns, typed as the dataset's schema types them."""
    dataset = _parquet_dataset(source)
    for i, fragment in enumerate(dataset.get_fragments()):
        if shard is not None and i != shard:
            continue
        keys = pads.get_partition_keys(fragment.partition_expression)
        with pq.ParquetFile(fragment.path, pre_buffer=False) as file:
            present = [n for n in names if n in file.schema_arrow.names]
            for batch in file.iter_batches(batch_size=rows, columns=present):
                if not batch.num_rows:
                    continue
                frame = batch.to_pandas()
                for name in names:
                    if name not in present:  # a partition's value (None: the null partition)
                        value = keys.get(name)
                        kind = dataset.schema.field(name).type.to_pandas_dtype()
                        frame[name] = pd.Series(
                            value, index=frame.index, dtype=kind if value is not None else object
                        )
                yield frame[names]


def _raw_chunks(
    source: Source, columns: Mapping[str, object], rows: int, shard: int | None
) -> Iterator[pd.DataFrame]:
    if shard not in (None, 0) and not isinstance(source, ParquetSource):
        raise SourceError(f"{describe(source)}: is read as one shard")
    if isinstance(source, CsvSource):
        yield from pd.read_csv(
            source.path,
            sep=source.separator,
            encoding=source.encoding,
            dtype={c: str for c in _text_columns(columns)},
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
            chunksize=rows,
        )
    elif isinstance(source, ParquetSource):
        yield from _parquet_chunks(source, list(columns), rows, shard)
    else:
        from sqlalchemy.exc import SQLAlchemyError

        engine = sql_engine(source)
        try:
            # a server-side cursor: the database hands the rows over chunk by chunk
            with engine.connect().execution_options(stream_results=True) as conn:
                yield from pd.read_sql(sql_select(source, header_only=False), conn, chunksize=rows)
        except SQLAlchemyError as exc:
            raise SourceError(f"{describe(source)}: query failed ({type(exc).__name__})") from None
        finally:
            engine.dispose()


def read_chunks(
    source: Source,
    columns: Mapping[str, object],
    *,
    rows: int = CHUNK_ROWS,
    shard: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Every row of a source (or of one of its :func:`shards`), at most ``rows`` at a
    time (declared columns only, text columns as text): pandas' chunked CSV reader, a
    Parquet file or partitioned directory file by file, or a server-side SQL cursor, so
    memory holds one chunk. Errors name the source and the kind of failure, never a line
    of it."""
    check_columns(source, columns)
    try:
        for frame in _raw_chunks(source, columns, int(rows), shard):
            yield _text_frame(frame, columns)
    except UnicodeDecodeError:
        raise SourceError(
            f"{describe(source)}: not valid {getattr(source, 'encoding', 'utf-8')} text"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise SourceError(f"{describe(source)}: cannot parse ({type(exc).__name__})") from None
    except pa.ArrowException as exc:
        raise SourceError(f"{describe(source)}: cannot read ({type(exc).__name__})") from None


def empty_frame(names: Iterable[str]) -> pd.DataFrame:
    """A frame of the named columns and no row (what a source without rows reads as)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in names})


def load_table(source: Source, columns: Mapping[str, object], *, label: str) -> SensitiveTable:
    """Read every row of a source into a :class:`SensitiveTable` (declared columns only)."""
    frames = list(read_chunks(source, columns))
    frame = pd.concat(frames, ignore_index=True) if frames else empty_frame(columns)
    log.info("source loaded", extra={"source": describe(source), "columns": len(columns)})
    return SensitiveTable(frame, label=label)


def check_domain(table: SensitiveTable, discretiser: Discretiser) -> None:
    """Guard after :func:`enforce_domain`: every row encodes (raises naming the column,
    never a value). It cannot fail on an enforced table; on a raw one it would say
    whether some value lies outside the domain, so callers run it only as that guard."""
    discretiser.encode(table.reveal())


def source_for_file(path: Path) -> CsvSource | ParquetSource:
    """A source for a table file, by its suffix (.csv / .parquet / .pq)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return ParquetSource(kind="parquet", path=path)
    if suffix in (".csv", ".txt", ".tsv"):
        return CsvSource(kind="csv", path=path, separator="\t" if suffix == ".tsv" else ",")
    raise SourceError(f"{path}: unknown table format (use .csv or .parquet)")


def load_raw(source: CsvSource | ParquetSource, *, label: str) -> SensitiveTable:
    """Every column with pandas' own types: only for drafting a spec."""
    names = read_header(source)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaMismatchError(f"{describe(source)}: duplicate column names {dupes}")
    try:
        if isinstance(source, ParquetSource):
            frame = pd.read_parquet(source.path)
        else:
            frame = pd.read_csv(
                source.path,
                sep=source.separator,
                encoding=source.encoding,
                keep_default_na=False,
                na_values=[""],
                low_memory=False,
            )
    except UnicodeDecodeError:
        raise SourceError(f"{describe(source)}: not valid utf-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise SourceError(f"{describe(source)}: cannot parse ({type(exc).__name__})") from None
    return SensitiveTable(frame, label=label)


# ---------------------------------------------------------------------------- domain rules
def enforce_domain(
    table: SensitiveTable, columns: Mapping[str, Column]
) -> tuple[SensitiveTable, dict[str, dict[str, int]]]:
    """Apply each column's out-of-domain rule, row by row: never a run-level decision.

    Values are read by :mod:`synthrelease.values` (one reading per declared type); the
    rules themselves are :func:`synthrelease.private.domain.enforce_frame`:

    - ``clip`` (default for numerical/datetime): a value outside the bounds moves to the
      nearest bound; a value that is not a number / date cannot be clipped: its row is
      dropped;
    - ``other`` (default for categorical columns with an ``other`` bucket): a value
      outside the category set becomes the bucket's label;
    - ``drop`` (default for booleans and categorical columns without a bucket): the row
      holding the value is left out.

    A null in a column declared ``nullable: false`` drops its row too. There is no
    ``refuse``: aborting the run when some value lies outside the domain would make the
    run's outcome a deterministic function of the rows (one bit per run, uncharged).
    Each rule acts on its row alone, so neighbouring tables stay neighbouring and the DP
    guarantee is unchanged. The counts returned (``clipped``, ``dropped``, and ``other``
    for bucketed columns) are real-data statistics: private workspace / internal report
    only. Nothing here raises on the rows' content.
    """
    frame, counts = enforce_frame(table.reveal(), columns)
    return SensitiveTable(frame, label=table.label), counts


def enforced_chunks(
    source: Source, columns: Mapping[str, Column], *, label: str
) -> Iterator[SensitiveTable]:
    """Every row of a source, a chunk at a time, with the declared-domain rules applied
    (:func:`enforce_domain`, row by row): memory holds one chunk."""
    for frame in read_chunks(source, columns):
        table, _ = enforce_domain(SensitiveTable(frame, label=label), columns)
        yield table


def require_rows(table: SensitiveTable, *, what: str, minimum: int = 1) -> None:
    """Refuse a table part with too few rows (says which part, not how many rows)."""
    if table.reveal().shape[0] < minimum:
        raise SchemaMismatchError(f"{what} has too few rows to release from")
