"""One-pass ingestion: a source, chunk by chunk, into the run's private parts.

Trusted reader. :func:`ingest` reads the source in bounded chunks
(:func:`~synthrelease.private.sources.read_chunks`), applies the out-of-domain rules row
by row (:func:`~synthrelease.private.domain.enforce_frame`), splits the holdout by the
Bernoulli coins of :func:`~synthrelease.private.workspace.holdout_coins` and writes, in
the run folder:

- the **code store** of the training part (:mod:`synthrelease.private.codes`): the
  discretised domain as uint8/uint16 codes, one file a column; the marginal generators
  count from it;
- both **parts** as Parquet directories (:class:`~synthrelease.private.parts.RowParts`),
  for what must see every real row (the firewall's row scan) or the rows themselves
  (DP-SGD, DP domain and edge estimates);
- a **uniform sample** of each part of at most ``sample_rows`` rows (bottom-k of random
  priorities), the rows every check reads: a part that fits is kept whole, in its order.

A row's coin depends on its content and its occurrence number among identical rows, so
identical rows must meet in one place: when the source is larger than one chunk, the
first pass writes each chunk's rows to :data:`BUCKETS` buckets by their content hash
and the second pass splits one bucket at a time; a bucket larger than a chunk is first
bucketed again by the next 8 bits of the hash. Memory holds about one chunk, never the
table. A bucket's rows are its chunks' rows concatenated as pandas concatenates the
chunks of one read (an integer column with a null in some chunk reads as floats), so a
bucketed part holds the same values as an in-memory one. A source that fits in one
chunk is split in memory, exactly as before streaming.

Everything written is private: counts go to the run's ``domain.json`` only.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.owner_only import private_dir
from synthrelease.private.codes import CodeWriter, SensitiveCodes
from synthrelease.private.domain import enforce_frame
from synthrelease.private.parts import RowParts
from synthrelease.private.sources import CHUNK_ROWS, empty_frame, read_chunks
from synthrelease.private.table import SensitiveTable
from synthrelease.private.workspace import Workspace, content_hashes, holdout_coins
from synthrelease.spec import Column, Source

BUCKETS = 256
MAX_PIECES = 16
Piece = tuple[Path, int, int]  # (bucket file, row group, bucket)
HASH = "__synthrelease_hash"
ORDER = "__synthrelease_row"


class _Sample:
    """Bottom-k sampling: the ``k`` rows of smallest random priority (a uniform sample
    without replacement), kept with their row numbers to restore the source's order.
    Rows are buffered and cut back to ``k`` when the buffer passes ``2k`` rows or
    :data:`MAX_PIECES` frames (a frame costs kilobytes however few its rows), and once
    ``k`` are held only rows below the k-th priority are kept: linear work, memory about
    ``3k`` rows."""

    def __init__(self, k: int, rng: np.random.Generator) -> None:
        self.k = k
        self.rng = rng
        self.pieces: list[pd.DataFrame] = []
        self.priorities: list[np.ndarray] = []
        self.held = 0
        self.threshold = np.inf

    def add(self, rows: pd.DataFrame) -> None:
        p = self.rng.random(len(rows))
        below = p < self.threshold
        if not below.any():
            return
        self.pieces.append(rows[below] if not below.all() else rows)
        self.priorities.append(p[below])
        self.held += int(below.sum())
        if self.held > 2 * self.k or len(self.pieces) > MAX_PIECES:
            self._cut()

    def _cut(self) -> None:
        frame = pd.concat(self.pieces, ignore_index=True)
        priority = np.concatenate(self.priorities)
        if len(frame) > self.k:
            keep = np.argpartition(priority, self.k - 1)[: self.k]
            frame, priority = frame.iloc[keep], priority[keep]
            self.threshold = float(priority.max())
        self.pieces, self.priorities, self.held = [frame], [priority], len(frame)

    def result(self, columns: list[str]) -> pd.DataFrame:
        if not self.pieces:
            return empty_frame(columns)
        self._cut()
        return self.pieces[0].sort_values(ORDER, kind="stable")[columns].reset_index(drop=True)


@dataclass(frozen=True)
class Ingested:
    """Where ingestion put the rows (paths in the run folder) and its private counts."""

    train: RowParts
    holdout: RowParts | None
    codes: SensitiveCodes | None
    counts: dict[str, dict[str, int]]
    rows: tuple[int, int]  # rows of each part (private)


class _Parts:
    """The writers of one ingestion: parts, code store, samples."""

    def __init__(
        self,
        root: Path,
        columns: list[str],
        discretiser: Discretiser | None,
        *,
        label: str,
        folders: tuple[str, str],
        split: bool,
        sample_rows: int,
        rng: np.random.Generator,
    ) -> None:
        self.columns = columns
        self.train = RowParts(root / folders[0], label=f"{label}:{folders[0]}")
        self.holdout = RowParts(root / folders[1], label=f"{label}:{folders[1]}") if split else None
        self.discretiser = discretiser
        self.codes = (
            CodeWriter(root / "codes", discretiser.names, list(discretiser.sizes.values()))
            if discretiser is not None
            else None
        )
        self.samples = [_Sample(sample_rows, rng), _Sample(sample_rows, rng)]
        self.index = 0
        self.rows = [0, 0]

    def add(self, frame: pd.DataFrame, holdout: np.ndarray | None) -> None:
        """Rows (with ORDER) of one chunk or bucket, and their coins (None: no split)."""
        parts = [frame] if holdout is None else [frame[~holdout], frame[holdout]]
        for i, part in enumerate(parts):
            if part.empty:
                continue
            rows = part[self.columns]
            self.rows[i] += len(rows)
            (self.train if i == 0 else self.holdout).write(rows, self.index)  # type: ignore[union-attr]
            self.samples[i].add(part)
            if i == 0 and self.codes is not None and self.discretiser is not None:
                coded = self.discretiser.encode(rows[self.discretiser.names])
                self.codes.append(coded.to_numpy().T)
        self.index += 1

    def close(self, sample_paths: tuple[Path, Path | None]) -> SensitiveCodes | None:
        for sample, path in zip(self.samples, sample_paths):
            if path is not None:
                sample_table = SensitiveTable(sample.result(self.columns), label="sample")
                Workspace(path.parent).save_table(sample_table, path)
        return self.codes.close() if self.codes is not None else None


def _enforced(
    source: Source, columns: Mapping[str, Column], counts: dict[str, dict[str, int]], rows: int
) -> Iterator[pd.DataFrame]:
    """The source's chunks after the domain rules, each with its rows' ORDER numbers."""
    start = 0
    for chunk in read_chunks(source, columns, rows=rows):
        frame, chunk_counts = enforce_frame(chunk, columns)
        for name, entry in chunk_counts.items():
            total = counts.setdefault(name, {})
            for k, v in entry.items():
                total[k] = total.get(k, 0) + int(v)
        frame[ORDER] = np.arange(start, start + len(chunk), dtype=np.int64)[: len(frame)]
        start += len(chunk)
        yield frame


def ingest(
    source: Source,
    columns: Mapping[str, Column],
    *,
    root: Path,
    label: str,
    discretiser: Discretiser | None,
    fraction: float | None,
    key: bytes,
    sample_rows: int,
    sample_paths: tuple[Path, Path | None],
    folders: tuple[str, str] = ("train", "holdout"),
    chunk_rows: int = CHUNK_ROWS,
) -> Ingested:
    """Read ``source`` once into ``root`` (see the module docstring). ``fraction``: the
    holdout share (None: every row goes to the first part, e.g. a separate holdout
    source read into ``folders=("holdout", ...)``); ``discretiser``: the domain of the
    code store (None: no code store); ``folders``: the parts' folders under ``root``."""
    names = list(columns)
    counts: dict[str, dict[str, int]] = {}
    rng = np.random.default_rng(
        int.from_bytes(hashlib.blake2b(b"samples", key=key, digest_size=8).digest(), "little")
    )
    parts = _Parts(
        root,
        names,
        discretiser,
        label=label,
        folders=folders,
        split=fraction is not None,
        sample_rows=sample_rows,
        rng=rng,
    )
    chunks = _enforced(source, columns, counts, chunk_rows)
    first = next(chunks, None)
    second = next(chunks, None) if first is not None else None
    if second is None:  # one chunk (or none): split in memory
        frame = first if first is not None else _empty(names)
        parts.add(frame, _coins(content_hashes(frame[names]), fraction, key))
    else:
        _bucketed(
            [first, second], chunks, parts, root / "buckets", names, fraction, key, chunk_rows
        )
    codes = parts.close(sample_paths)
    for part in (parts.train, parts.holdout):
        if part is not None and not (part.root.is_dir() and part.files()):
            raise SchemaMismatchError(f"the {part.root.name} part of {label} has too few rows")
    return Ingested(parts.train, parts.holdout, codes, counts, (parts.rows[0], parts.rows[1]))


def _empty(names: list[str]) -> pd.DataFrame:
    frame = empty_frame(names)
    frame[ORDER] = pd.Series(dtype=np.int64)
    return frame


def _coins(content: np.ndarray, fraction: float | None, key: bytes) -> np.ndarray | None:
    """The rows' holdout coins from their content hashes (None: no split)."""
    if fraction is None:
        return None
    return holdout_coins(content, fraction=fraction, key=key)


def _bucket_of(content: np.ndarray, level: int) -> np.ndarray:
    """The bucket of each content hash at ``level`` (0: the top 8 bits, 1: the next 8)."""
    return ((content >> np.uint64(56 - 8 * level)) & np.uint64(0xFF)).astype(np.int64) % BUCKETS


def _write_buckets(frames: Iterator[pd.DataFrame], folder: Path, level: int) -> list[Piece]:
    """Each frame (with HASH) to one file, rows ordered by bucket, one row group a bucket
    (a file keeps its frame's own column types). Returns the pieces: (file, row group,
    bucket), in row order within each bucket."""
    private_dir(folder)
    pieces: list[Piece] = []
    for i, frame in enumerate(frames):
        bucket = _bucket_of(frame[HASH].to_numpy(np.uint64), level)
        order = np.argsort(bucket, kind="stable")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        starts = np.searchsorted(bucket[order], np.arange(BUCKETS + 1))
        path = folder / f"c{i:05d}.parquet"
        with pq.ParquetWriter(path, table.schema) as writer:
            for group, b in enumerate(np.flatnonzero(np.diff(starts))):
                writer.write_table(table.take(order[starts[b] : starts[b + 1]]))
                pieces.append((path, group, int(b)))
        path.chmod(0o600)
    return pieces


def _read(pieces: list[Piece]) -> Iterator[pd.DataFrame]:
    for path, group, _ in pieces:
        with pq.ParquetFile(path) as file:
            yield file.read_row_group(group).to_pandas()


def _batched(frames: Iterator[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Frames concatenated up to about ``rows`` rows each, in order."""
    held: list[pd.DataFrame] = []
    count = 0
    for frame in frames:
        held.append(frame)
        count += len(frame)
        if count >= rows:
            yield pd.concat(held, ignore_index=True)
            held, count = [], 0
    if held:
        yield pd.concat(held, ignore_index=True)


def _split_buckets(
    pieces: list[Piece],
    folder: Path,
    level: int,
    parts: _Parts,
    fraction: float | None,
    key: bytes,
    rows: int,
) -> None:
    """Pass 2: one bucket at a time, its pieces concatenated in row order (as pandas
    concatenates the chunks of one read), split and written; a bucket of more than
    ``rows`` rows is first bucketed again by the next 8 bits of the hash, so memory
    holds about ``rows`` rows however large the table."""
    for b in range(BUCKETS):
        mine = [p for p in pieces if p[2] == b]
        if not mine:
            continue
        size = 0
        for path, group, _ in mine:
            with pq.ParquetFile(path) as file:
                size += file.metadata.row_group(group).num_rows
        if size > rows and level < 7:
            sub = folder / f"l{level + 1}b{b:03d}"
            deeper = _write_buckets(_batched(_read(mine), rows), sub, level + 1)
            _split_buckets(deeper, sub, level + 1, parts, fraction, key, rows)
            shutil.rmtree(sub, ignore_errors=True)
            continue
        frame = pd.concat(list(_read(mine)), ignore_index=True)
        holdout = _coins(frame[HASH].to_numpy(np.uint64), fraction, key)
        parts.add(frame.drop(columns=[HASH]), holdout)


def _bucketed(
    head: list[pd.DataFrame],
    rest: Iterator[pd.DataFrame],
    parts: _Parts,
    folder: Path,
    names: list[str],
    fraction: float | None,
    key: bytes,
    rows: int,
) -> None:
    """Pass 1: every chunk's rows into buckets by content hash; pass 2: each bucket split."""

    def hashed() -> Iterator[pd.DataFrame]:
        for frame in itertools.chain(head, rest):  # one chunk at a time
            yield frame.assign(**{HASH: content_hashes(frame[names])})

    try:
        pieces = _write_buckets(hashed(), folder, 0)
        _split_buckets(pieces, folder, 0, parts, fraction, key, rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_sample(path: Path, *, label: str) -> SensitiveTable:
    """A part's sample, as the checks read it."""
    return SensitiveTable(pd.read_parquet(path), label=label)
