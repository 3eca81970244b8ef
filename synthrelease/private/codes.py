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
them as they are (``SensitiveCodes.column_file``), for readers that need random access.

Like :class:`~synthrelease.private.table.SensitiveTable`, a :class:`SensitiveCodes`
refuses ``len()``, pickling and printing its rows, and :meth:`SensitiveCodes.reveal`
answers only the trusted readers.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
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


class CodeWriter:
    """Appends chunks of codes (shape ``(columns, rows)``) to a new code store."""

    def __init__(self, root: Path, names: Sequence[str], sizes: Sequence[int]) -> None:
        self.root = private_dir(Path(root))
        self.names = [str(n) for n in names]
        self.sizes = [int(s) for s in sizes]
        self.dtypes = [code_dtype(s) for s in self.sizes]
        self.rows = 0
        self._files = []
        for i in range(len(self.names)):
            fd = os.open(
                _column_file(self.root, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE
            )
            self._files.append(os.fdopen(fd, "wb"))

    def append(self, codes: np.ndarray) -> None:
        if codes.shape[0] != len(self.names):
            raise SchemaMismatchError("codes and the store disagree on the number of columns")
        for fh, column, dtype in zip(self._files, codes, self.dtypes):
            fh.write(np.ascontiguousarray(column, dtype=dtype).tobytes())
        self.rows += int(codes.shape[1])

    def close(self) -> SensitiveCodes:
        for fh in self._files:
            fh.close()
        meta = {"names": self.names, "sizes": self.sizes, "rows": self.rows}
        fd = os.open(self.root / META, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as text:
            json.dump(meta, text)
        return SensitiveCodes(self.root, label=self.root.name)


class SensitiveCodes:
    """Integer codes of sensitive rows on disk. Never printed, pickled or published."""

    __slots__ = ("_root", "_label", "_meta")
    _root: Path
    _label: str
    _meta: dict[str, Any]

    def __init__(self, root: Path, *, label: str) -> None:
        try:
            meta = json.loads((Path(root) / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise SourceError(f"code store missing or damaged: {Path(root).name}") from None
        object.__setattr__(self, "_root", Path(root))
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_meta", meta)

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

    def _chunks(self, rows: int) -> Iterator[np.ndarray]:
        total = int(self._meta["rows"])
        dtypes = [code_dtype(s) for s in self.sizes]
        for start in range(0, total, rows):
            n = min(rows, total - start)
            out = np.empty((len(dtypes), n), dtype=max(dtypes, key=lambda d: d.itemsize))
            for i, dtype in enumerate(dtypes):
                with open(_column_file(self._root, i), "rb") as fh:
                    fh.seek(start * dtype.itemsize)
                    out[i] = np.fromfile(fh, dtype=dtype, count=n)
            yield out

    def __len__(self) -> int:
        raise PrivacyError("the row count of sensitive codes is private; use a DP estimate")

    def __repr__(self) -> str:
        return f"<SensitiveCodes {self._label!r}: {len(self.names)} columns, rows hidden>"

    __str__ = __repr__

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SensitiveCodes is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError(f"refusing to pickle sensitive codes {self._label!r}")
