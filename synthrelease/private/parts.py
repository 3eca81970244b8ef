"""A part of the sensitive rows (training or holdout) on disk, read in bounded chunks.

Trusted reader. Written by :mod:`synthrelease.private.ingest`: a directory of Parquet
files (``part-NNNNN.parquet``, 0600, in a 0700 directory), each a slice of the part's rows
after the out-of-domain rules, at most a few hundred thousand rows. Whatever reads a whole
part (the firewall's row scan) iterates :meth:`RowParts.chunks`, so its memory does not
grow with the table; the checks read the bounded samples next to it instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synthrelease.errors import SourceError
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.table import SensitiveTable

CHUNK_ROWS = 250_000  # rows per chunk a reader holds


@dataclass(frozen=True)
class RowParts:
    """One part of the sensitive rows as a directory of Parquet files."""

    root: Path
    label: str

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            raise SourceError(f"workspace part missing: {self.root.name} (was the run cleaned up?)")
        return sorted(self.root.glob("part-*.parquet"))

    def write(self, frame: pd.DataFrame, index: int) -> Path:
        """Write one slice as ``part-<index>.parquet`` (owner-only)."""
        private_dir(self.root)
        path = self.root / f"part-{index:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            frame.to_parquet(fh, index=False)
        os.replace(tmp, path)
        return path

    def chunks(self, *, rows: int = CHUNK_ROWS) -> Iterator[SensitiveTable]:
        """Every row of the part, ``rows`` (at most) at a time, in file order."""
        for path in self.files():
            with pq.ParquetFile(path) as file:
                for batch in file.iter_batches(batch_size=rows):
                    yield SensitiveTable(batch.to_pandas(), label=self.label)

    def load(self) -> SensitiveTable:
        """The whole part in memory: only for what cannot stream (DP-SGD's training
        tensor, the opt-in DP domain and edge estimates)."""
        frames = [pd.read_parquet(p) for p in self.files()]
        if not frames:
            raise SourceError(f"workspace part {self.root.name} holds no file")
        return SensitiveTable(pd.concat(frames, ignore_index=True), label=self.label)
