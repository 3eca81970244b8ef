"""One ingested source on disk, and its parts (training, holdout), read in bounded chunks.

Trusted reader. Written by :mod:`synthrelease.private.ingest`, a source's folder holds, in
the source's row order (after the out-of-domain rules):

- ``facts/``: per-row arrays that whatever must see every real row reads instead of the
  rows (the firewall's row scan: each row's copy key and its high-resolution values, as
  :func:`synthrelease.private.rowscan.row_facts` computes them), raw column files of
  :mod:`synthrelease.private.codes` with their names and types in ``meta.json``;
- ``rows/part-NNNNN.parquet``: the rows themselves, only where something must read them
  (DP-SGD's training tensor, the opt-in DP domain and edge estimates);
- ``sides.bits``: one bit a row, the row's part (0 training, 1 holdout), when the
  source was split.

A :class:`StoredPart` is one part of such a folder; :meth:`StoredPart.facts` and
:meth:`StoredPart.chunks` read ``CHUNK_ROWS`` rows at a time, so memory does not grow
with the table. Files are 0600 in 0700 directories, removed with the run's split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthrelease.errors import SourceError
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.codes import (
    ColumnFiles,
    Selection,
    column_chunks,
    read_meta,
    write_meta,
)
from synthrelease.private.table import SensitiveTable

CHUNK_ROWS = 250_000  # rows per chunk a reader holds
FACTS = "facts"
ROWS = "rows"
SIDES = "sides.bits"


class SourceWriter:
    """Appends one source's chunks to a source folder: their facts (where given), and
    their rows if ``keep_rows``."""

    def __init__(self, root: Path, *, keep_rows: bool) -> None:
        self.root = private_dir(Path(root))
        self.keep_rows = keep_rows
        self._facts: ColumnFiles | None = None
        self._names: list[str] = []
        self._index = 0
        self._rows = 0

    def add(self, frame: pd.DataFrame, facts: Mapping[str, np.ndarray] | None) -> None:
        if facts is not None:
            if self._facts is None:
                self._names = list(facts)
                dtypes = [facts[n].dtype for n in self._names]
                self._facts = ColumnFiles(self.root / FACTS, dtypes)
            self._facts.append([facts[n] for n in self._names])
        self._rows += len(frame)
        if self.keep_rows:
            write_parquet(frame, self.root / ROWS / f"part-{self._index:05d}.parquet")
        self._index += 1

    def close(self) -> int:
        """Close the files; returns the rows written (private)."""
        files = self._facts
        if files is not None:
            files.close()
            dtypes = [str(d) for d in files.dtypes]
            write_meta(files.root, {"names": self._names, "dtypes": dtypes, "rows": self._rows})
        return self._rows


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        frame.to_parquet(fh, index=False)
    os.replace(tmp, path)


@dataclass(frozen=True)
class StoredPart:
    """One part of an ingested source: the rows whose side is ``side`` (None: every row
    of the source, which was not split)."""

    root: Path
    label: str
    side: int | None = None

    @property
    def _select(self) -> Selection | None:
        return None if self.side is None else Selection(self.root / SIDES, self.side)

    def _meta(self) -> dict[str, object]:
        if not self.root.is_dir():
            raise SourceError(f"workspace part missing: {self.root.name} (was the run cleaned up?)")
        return read_meta(self.root / FACTS, "workspace part")

    @property
    def has_facts(self) -> bool:
        """Whether ingestion stored the rows' facts (it does where every column's domain
        was declared; else the facts are computed from the rows, once resolved)."""
        return (self.root / FACTS).is_dir()

    def facts(self, *, rows: int = CHUNK_ROWS) -> Iterator[dict[str, np.ndarray]]:
        """The part's per-row facts, ``rows`` rows of the source at a time."""
        meta = self._meta()
        names = [str(n) for n in meta["names"]]  # type: ignore[attr-defined]
        dtypes = [np.dtype(str(d)) for d in meta["dtypes"]]  # type: ignore[attr-defined]
        total = int(meta["rows"])  # type: ignore[call-overload]
        for chunk in column_chunks(self.root / FACTS, dtypes, total, rows, self._select):
            yield dict(zip(names, chunk))

    def files(self) -> list[Path]:
        files = sorted((self.root / ROWS).glob("part-*.parquet"))
        if not files:
            raise SourceError(f"the rows of {self.root.name} were not kept for this run")
        return files

    def _frames(self, rows: int) -> Iterator[pd.DataFrame]:
        start = 0
        for path in self.files():
            with pq.ParquetFile(path) as file:
                for batch in file.iter_batches(batch_size=rows):
                    frame = batch.to_pandas()
                    select = self._select
                    if select is not None:
                        keep = select.mask(start, len(frame))
                        start += len(frame)
                        frame = frame[keep].reset_index(drop=True)
                    yield frame

    def chunks(self, *, rows: int = CHUNK_ROWS) -> Iterator[SensitiveTable]:
        """The part's rows, at most ``rows`` at a time, in the source's order."""
        for frame in self._frames(rows):
            yield SensitiveTable(frame, label=self.label)

    def load(self) -> SensitiveTable:
        """The whole part in memory: only for what cannot stream (DP-SGD's training
        tensor, the opt-in DP domain and edge estimates)."""
        frames = list(self._frames(CHUNK_ROWS))
        return SensitiveTable(pd.concat(frames, ignore_index=True), label=self.label)
