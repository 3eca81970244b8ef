"""The private code store: the training rows as compact integer codes, one file a column.

Base layer (the generators read it). A code store is a directory in the private
workspace: ``meta.json`` (the column names and domain sizes: public facts of the spec;
the row count is private and stays in this file) and one raw little-endian file per
column, ``uint8`` for a domain of at most 256 codes, ``uint16`` up to 65,536 (a 100M-row,
15-column table is 1.5 GB on disk). :class:`CodeWriter` appends chunks in one pass;
:class:`SensitiveCodes` hands them out again, ``rows`` at a time, so whatever counts
marginals from it holds one chunk, never the table.

Chunks are read with plain file reads rather than a long-lived memory map: pages of a
map stay in the process's resident set while it is open, which would make a pass over
100M rows cost 1.5 GB of RSS. The files are laid out so that ``numpy.memmap`` opens
them as they are: :meth:`SensitiveCodes.random_access` (a :class:`RowAccess`) reads rows
by index through such maps, for samplers that draw a few rows a step.

Like :class:`~synthrelease.private.table.SensitiveTable`, a :class:`SensitiveCodes`
refuses ``len()``, pickling and printing its rows, and :meth:`SensitiveCodes.reveal`
answers only the trusted readers.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from synthrelease.errors import PrivacyError, SchemaMismatchError, SourceError
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.table import LIBRARY, TRUSTED_READERS

META = "meta.json"
CHUNK_ROWS = 1_000_000  # rows a reader holds at a time (15 columns: 15 MB of uint8)


def code_dtype(size: int) -> np.dtype:
    """The smallest unsigned dtype that holds codes ``0..size-1``."""
    if size <= 2**8:
        return np.dtype(np.uint8)
    if size <= 2**16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def _column_file(root: Path, i: int) -> Path:
    return root / f"c{i:04d}.codes"


@dataclass(frozen=True)
class Selection:
    """The rows of one part: a file of one bit a row (the row's part, written by the
    split; little-endian bit order, 1 for holdout) and the part wanted."""

    sides: Path
    side: int

    def mask(self, start: int, count: int) -> np.ndarray:
        """Whether each of rows ``start .. start+count`` is in the part."""
        first, stop = start // 8, -(-(start + count) // 8)
        bits = np.unpackbits(
            read_slice(self.sides, np.dtype(np.uint8), first, stop - first), bitorder="little"
        )
        offset = start - 8 * first
        return bits[offset : offset + count] == self.side


def read_slice(path: Path, dtype: np.dtype, start: int, count: int) -> np.ndarray:
    """Rows ``start .. start+count`` of a raw column file (a plain read: no memory map)."""
    with open(path, "rb") as fh:
        fh.seek(start * dtype.itemsize)
        return np.fromfile(fh, dtype=dtype, count=count)


class ColumnFiles:
    """Appends chunks of columns (one array a column) to raw files ``c0000.codes``, ...:
    the layout of the code store, and of any per-row arrays the private workspace keeps."""

    def __init__(self, root: Path, dtypes: Sequence[np.dtype]) -> None:
        self.root = private_dir(Path(root))
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.rows = 0
        self._files = []
        for i in range(len(self.dtypes)):
            fd = os.open(
                _column_file(self.root, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE
            )
            self._files.append(os.fdopen(fd, "wb"))

    def append(self, columns: Sequence[np.ndarray]) -> None:
        if len(columns) != len(self.dtypes):
            raise SchemaMismatchError("the chunk and the store disagree on the number of columns")
        for fh, column, dtype in zip(self._files, columns, self.dtypes):
            fh.write(np.ascontiguousarray(column, dtype=dtype).tobytes())
        self.rows += int(len(columns[0])) if len(columns) else 0

    def close(self) -> int:
        """Close the files; returns the rows written."""
        for fh in self._files:
            fh.close()
        return self.rows


def column_chunks(
    root: Path, dtypes: Sequence[np.dtype], total: int, rows: int, select: Selection | None
) -> Iterator[list[np.ndarray]]:
    """The columns of a :class:`ColumnFiles` store, ``rows`` rows at a time, only the
    rows of ``select``'s part (None: every row)."""
    for start in range(0, total, rows):
        n = min(rows, total - start)
        chunk = [read_slice(_column_file(root, i), d, start, n) for i, d in enumerate(dtypes)]
        if select is not None:
            keep = select.mask(start, n)
            chunk = [column[keep] for column in chunk]
        yield chunk


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    fd = os.open(root / META, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as text:
        json.dump(meta, text)


def read_meta(root: Path, what: str) -> dict[str, Any]:
    try:
        return dict(json.loads((Path(root) / META).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        raise SourceError(f"{what} missing or damaged: {Path(root).name}") from None


class CodeWriter:
    """Appends chunks of codes (shape ``(columns, rows)``) to a new code store."""

    def __init__(self, root: Path, names: Sequence[str], sizes: Sequence[int]) -> None:
        self.names = [str(n) for n in names]
        self.sizes = [int(s) for s in sizes]
        self._files = ColumnFiles(root, [code_dtype(s) for s in self.sizes])
        self.root = self._files.root

    def append(self, codes: np.ndarray) -> None:
        if codes.shape[0] != len(self.names):
            raise SchemaMismatchError("codes and the store disagree on the number of columns")
        self._files.append(list(codes))

    def close(self, select: Selection | None = None) -> SensitiveCodes:
        """Close the store; the codes of ``select``'s rows (None: every row)."""
        rows = self._files.close()
        write_meta(self.root, {"names": self.names, "sizes": self.sizes, "rows": rows})
        return SensitiveCodes(self.root, label=self.root.name, select=select)


class SensitiveCodes:
    """Integer codes of sensitive rows on disk. Never printed, pickled or published."""

    __slots__ = ("_root", "_label", "_meta", "_select")
    _root: Path
    _label: str
    _meta: dict[str, Any]
    _select: Selection | None

    def __init__(self, root: Path, *, label: str, select: Selection | None = None) -> None:
        object.__setattr__(self, "_root", Path(root))
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_meta", read_meta(root, "code store"))
        object.__setattr__(self, "_select", select)

    @property
    def label(self) -> str:
        return self._label

    @property
    def names(self) -> list[str]:
        """Column names are public (declared in the spec)."""
        return list(self._meta["names"])

    @property
    def sizes(self) -> list[int]:
        """Domain sizes are public (they follow from the spec)."""
        return [int(s) for s in self._meta["sizes"]]

    def reveal(self, *, rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        """The codes, ``rows`` rows at a time, shape ``(columns, <= rows)``. Only for the
        modules in ``TRUSTED_READERS`` (see :meth:`SensitiveTable.reveal`)."""
        caller = str(sys._getframe(1).f_globals.get("__name__", ""))
        if caller.startswith(LIBRARY) and caller not in TRUSTED_READERS:
            raise PrivacyError(f"{caller} is not a trusted reader of sensitive rows")
        return self._chunks(int(rows))

    def random_access(self) -> RowAccess:
        """The part's codes by row index (see :class:`RowAccess`; close it). Only for
        the modules in ``TRUSTED_READERS``, like :meth:`reveal`."""
        caller = str(sys._getframe(1).f_globals.get("__name__", ""))
        if caller.startswith(LIBRARY) and caller not in TRUSTED_READERS:
            raise PrivacyError(f"{caller} is not a trusted reader of sensitive rows")
        return RowAccess(self._root, self.sizes, int(self._meta["rows"]), self._select)

    def _chunks(self, rows: int) -> Iterator[np.ndarray]:
        dtypes = [code_dtype(s) for s in self.sizes]
        wide = max(dtypes, key=lambda d: d.itemsize)
        total = int(self._meta["rows"])
        for chunk in column_chunks(self._root, dtypes, total, rows, self._select):
            yield np.stack(chunk).astype(wide, copy=False) if chunk else np.empty((0, 0), wide)

    def __len__(self) -> int:
        raise PrivacyError("the row count of sensitive codes is private; use a DP estimate")

    def __repr__(self) -> str:
        return f"<SensitiveCodes {self._label!r}: {len(self.names)} columns, rows hidden>"

    __str__ = __repr__

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SensitiveCodes is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError(f"refusing to pickle sensitive codes {self._label!r}")


class RowAccess:
    """One part's codes by row index: row ``i`` is the part's ``i``-th row in the store's
    order, for samplers that read a few rows at a time (DP-SGD's Poisson batches). From
    :meth:`SensitiveCodes.random_access` only; a context manager (close it). Its
    :attr:`count` is the part's exact row count: private, for the trusted reader's DP
    mechanisms and samplers only.

    Costs. Opening a split store reads the part's bits once, :data:`CHUNK_ROWS` rows at a
    time, and writes the store row of each of the part's rows to a temporary file in the
    store's folder (``uint32``, 4 bytes a row of the part; ``uint64`` past 2^32 rows: 320
    MB for 80M training rows, 0600, removed by :meth:`close`), read back through a memory
    map: memory holds one chunk, never the index (8 bytes a row held as int64). An unsplit
    store needs no index. :meth:`gather` reads ``len(index)`` entries of the index and of
    each column through read-only maps kept open until :meth:`close`: O(batch) a call,
    whatever the rows. The pages it touched stay mapped until then: the kernel's page
    cache (clean, shared, dropped under pressure), counted in the resident set as file
    pages, not heap; a long fit over a large store touches most of them.
    """

    __slots__ = ("_columns", "_count", "_index", "_index_path", "_maps", "_wide")

    def __init__(
        self, root: Path, sizes: Sequence[int], total: int, select: Selection | None
    ) -> None:
        dtypes = [code_dtype(s) for s in sizes]
        self._columns = len(dtypes)
        self._wide = max(dtypes, key=lambda d: d.itemsize) if dtypes else np.dtype(np.uint8)
        self._index: np.ndarray | None = None
        self._index_path: Path | None = None
        self._maps: list[np.ndarray] = []
        self._count = total
        try:
            if select is not None:
                self._index_path, self._count = _write_index(root, total, select)
                if self._count:
                    dtype = _index_dtype(total)
                    self._index = np.memmap(self._index_path, dtype, "r", shape=(self._count,))
            if self._count:  # (an empty file cannot be mapped)
                self._maps = [
                    np.memmap(_column_file(root, i), d, "r", shape=(total,))
                    for i, d in enumerate(dtypes)
                ]
        except BaseException:
            self.close()
            raise

    @property
    def count(self) -> int:
        """The part's rows (private)."""
        return self._count

    def gather(self, index: np.ndarray) -> np.ndarray:
        """The codes of the part's rows ``index`` (integers in ``[0, count)``, any order,
        repeats allowed), shape ``(columns, len(index))``: a chunk as
        :meth:`SensitiveCodes.reveal` yields it, in the store's widest dtype."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (int(index.min()) < 0 or int(index.max()) >= self._count):
            raise IndexError("a row index outside the part")
        rows = index if self._index is None else self._index[index]
        out = np.empty((self._columns, index.size), dtype=self._wide)
        for i, column in enumerate(self._maps):
            out[i] = column[rows]
        return out

    def close(self) -> None:
        """Drop the maps and remove the index file."""
        self._maps, self._index = [], None
        if self._index_path is not None:
            self._index_path.unlink(missing_ok=True)
            self._index_path = None

    def __enter__(self) -> RowAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RowAccess: {self._columns} columns, rows hidden>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError("refusing to pickle sensitive codes")


def _index_dtype(total: int) -> np.dtype:
    return np.dtype(np.uint32) if total <= 2**32 else np.dtype(np.uint64)


def _write_index(root: Path, total: int, select: Selection) -> tuple[Path, int]:
    """The store rows of ``select``'s part, in order, to a new 0600 file in ``root``
    (one chunk of the bits in memory at a time); returns the file and the part's rows."""
    dtype = _index_dtype(total)
    fd, name = tempfile.mkstemp(dir=root, prefix=f"part{select.side}-", suffix=".rows")
    path, count = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for start in range(0, total, CHUNK_ROWS):
                keep = select.mask(start, min(CHUNK_ROWS, total - start))
                rows = np.flatnonzero(keep) + start
                fh.write(rows.astype(dtype).tobytes())
                count += int(rows.size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, count


Counter = Callable[[Sequence[tuple[int, ...]]], list[tuple[np.ndarray, np.ndarray]]]


class CountedCodes:
    """Training codes that stay where they are (a database) and answer counts only:
    ``counter(cliques)`` returns, per clique of column positions, the cells present
    (codes, shape ``(len(clique), cells)``) and their exact counts. The application
    layer builds it (``synthrelease.private.database``); the marginal generators count
    through it as through a code store. Exact counts are as private as the rows:
    :meth:`reveal_counts` answers only the trusted readers, and the object refuses
    ``len()``, pickling and printing."""

    __slots__ = ("_names", "_sizes", "_counter", "_label")
    _names: list[str]
    _sizes: list[int]
    _counter: Counter
    _label: str

    def __init__(
        self, names: Sequence[str], sizes: Sequence[int], counter: Counter, *, label: str
    ) -> None:
        object.__setattr__(self, "_names", [str(n) for n in names])
        object.__setattr__(self, "_sizes", [int(s) for s in sizes])
        object.__setattr__(self, "_counter", counter)
        object.__setattr__(self, "_label", label)

    @property
    def label(self) -> str:
        return self._label

    @property
    def names(self) -> list[str]:
        """Column names are public (declared in the spec)."""
        return list(self._names)

    @property
    def sizes(self) -> list[int]:
        """Domain sizes are public (they follow from the spec)."""
        return list(self._sizes)

    def reveal_counts(
        self, cliques: Sequence[tuple[int, ...]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact counts of each clique (``()``: the row count), as the cells present and
        their counts. Only for the modules in ``TRUSTED_READERS``."""
        caller = str(sys._getframe(1).f_globals.get("__name__", ""))
        if caller.startswith(LIBRARY) and caller not in TRUSTED_READERS:
            raise PrivacyError(f"{caller} is not a trusted reader of sensitive rows")
        return self._counter([tuple(int(a) for a in c) for c in cliques])

    def __len__(self) -> int:
        raise PrivacyError("the row count of sensitive codes is private; use a DP estimate")

    def __repr__(self) -> str:
        return f"<CountedCodes {self._label!r}: {len(self._names)} columns, rows hidden>"

    __str__ = __repr__

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("CountedCodes is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError(f"refusing to pickle sensitive codes {self._label!r}")
