"""One-pass ingestion: a source, chunk by chunk, into the run's private folder.

Trusted reader. :func:`ingest` reads the source in shards (a Parquet dataset: one a
file; any other source: one) and each shard in bounded chunks
(:func:`~synthrelease.private.sources.read_chunks`). A shard (:func:`ingest_shard`, in
this process, a local process pool or on a Dask cluster: the outputs are the same)
applies the out-of-domain rules row by row
(:func:`~synthrelease.private.domain.enforce_frame`) and writes, per chunk, in its
folder and in row order:

- the **code store** (:mod:`synthrelease.private.codes`): the discretised domain as
  uint8/uint16 codes, one file a column; the generators train from the training part's
  codes;
- the rows' **facts**: what the firewall's row scan needs of every real row
  (:func:`~synthrelease.private.rowscan.row_facts`), so it never re-reads the rows;
- the **rows** themselves, only where the generator must read rows (``keep_rows``);
- the **sample candidates**: each row draws a random priority (a generator keyed by the
  run's key and the shard's number), and a row whose priority is among the shard's
  ``K`` smallest so far is written aside with its row number and priority, where ``K``
  is ``sample_rows`` divided by the smaller part's share, with 25% slack;
- its rows' (content hash, row number) pairs in :data:`BUCKETS` files by hash.

Then, in :func:`ingest`: the shards' code and fact files are concatenated in shard order
(the source's row order); the **split**: a row's coin depends on its content and its
occurrence number among identical rows
(:func:`~synthrelease.private.workspace.holdout_coins`), so identical rows must meet,
and each bucket, over all shards, is split on its own (16 bytes a row of a bucket: 6 MB
a bucket at 100M rows; a source of one chunk is split in memory). The coins go to
``sides.bits``, one bit a row; the split is the in-memory split's, coin for coin. Last,
each part's **uniform sample** of at most ``sample_rows`` rows (bottom-k of the
priorities among that part's candidates), the rows every check reads: a part that fits
is kept whole, in its order.

Memory holds a chunk per shard worker, the ``K`` smallest priorities and a bucket,
never the table. Everything written is private: counts go to the run's ``domain.json``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.codes import (
    CodeWriter,
    Selection,
    SensitiveCodes,
    read_meta,
    write_meta,
)
from synthrelease.private.domain import enforce_frame
from synthrelease.private.parts import (
    FACTS,
    ROWS,
    SIDES,
    SourceWriter,
    StoredPart,
    write_parquet,
)
from synthrelease.private.rowscan import row_facts
from synthrelease.private.sources import CHUNK_ROWS, empty_frame, read_chunks, shards
from synthrelease.private.table import SensitiveTable
from synthrelease.private.workspace import Workspace, content_hashes, holdout_coins
from synthrelease.spec import Column, Source

BUCKETS = 256
MAX_PIECES = 16
SAMPLE_SLACK = 1.25  # candidates kept: sample_rows / (the smaller part's share) x this
ORDER = "__synthrelease_row"
PRIORITY = "__synthrelease_priority"


class _Sample:
    """Bottom-k sampling: the ``k`` rows of smallest priority (a uniform sample without
    replacement), kept with their row numbers to restore the source's order. Rows are
    buffered and cut back to ``k`` when the buffer passes ``2k`` rows or
    :data:`MAX_PIECES` frames, and once ``k`` are held only rows below the k-th priority
    are kept: linear work, memory about ``3k`` rows."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.pieces: list[pd.DataFrame] = []
        self.priorities: list[np.ndarray] = []
        self.held = 0
        self.threshold = np.inf

    def add(self, rows: pd.DataFrame, priority: np.ndarray) -> None:
        below = priority < self.threshold
        if not below.any():
            return
        self.pieces.append(rows[below] if not below.all() else rows)
        self.priorities.append(priority[below])
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


class _Candidates:
    """Pass 1 of the samples, in one shard: every row gets a priority; rows among the
    ``k`` smallest priorities so far are written to ``folder`` (a superset of the shard's
    ``k`` smallest: the threshold only falls), with their shard row numbers."""

    def __init__(self, folder: Path, k: int, rng: np.random.Generator) -> None:
        self.folder = folder
        self.k = k
        self.rng = rng
        self.smallest = np.empty(0)
        self.files: list[Path] = []

    def add(self, frame: pd.DataFrame) -> None:
        priority = self.rng.random(len(frame))
        self.smallest = _smallest(np.concatenate([self.smallest, priority]), self.k)
        keep = priority <= _threshold(self.smallest, self.k)
        if keep.any():
            path = private_dir(self.folder) / f"c{len(self.files):05d}.parquet"
            write_parquet(frame[keep].assign(**{PRIORITY: priority[keep]}), path)
            self.files.append(path)


def _smallest(pool: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest of ``pool`` (all of it when it holds fewer)."""
    return np.partition(pool, k - 1)[:k] if len(pool) > k else pool


def _threshold(smallest: np.ndarray, k: int) -> float:
    """The k-th smallest priority (inf while fewer than k are known)."""
    return float(np.partition(smallest, k - 1)[k - 1]) if len(smallest) >= k else np.inf


class _Buckets:
    """The split's first half, in one shard: (content hash, shard row number) pairs to
    BUCKETS files by hash, so identical rows meet in one bucket. With ``hold``, the
    first chunk's hashes are held and spilled only when a second chunk comes (a source
    of one chunk is split in memory)."""

    def __init__(self, folder: Path, *, hold: bool) -> None:
        self.folder = folder
        self.hold = hold
        self.held: np.ndarray | None = None
        self.files: list[Any] = []
        self.rows = 0

    def add(self, content: np.ndarray) -> None:
        if self.hold and self.held is None and not self.files:  # the first chunk
            self.held = content
        else:
            if not self.files:  # from here on, every row to its bucket
                private_dir(self.folder)
                self.files = [
                    os.fdopen(os.open(bucket_file(self.folder, b), _APPEND, FILE_MODE), "wb")
                    for b in range(BUCKETS)
                ]
                held, self.held = self.held, None
                if held is not None:
                    self._spill(held, 0)
            self._spill(content, self.rows)
        self.rows += len(content)

    def _spill(self, content: np.ndarray, start: int) -> None:
        bucket = (content >> np.uint64(56)).astype(np.int64) % BUCKETS
        order = np.argsort(bucket, kind="stable")
        rows = np.arange(start, start + len(content), dtype=np.uint64)
        pairs = np.stack([content, rows], axis=1)[order].astype("<u8")
        bounds = np.searchsorted(bucket[order], np.arange(BUCKETS + 1))
        for b in np.flatnonzero(np.diff(bounds)):
            self.files[b].write(pairs[bounds[b] : bounds[b + 1]].tobytes())

    def close(self) -> None:
        for fh in self.files:
            fh.close()


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def bucket_file(folder: Path, b: int) -> Path:
    return folder / f"b{b:04d}"


@dataclass(frozen=True)
class ShardJob:
    """What one shard of pass 1 needs (no row: a worker process reads its own shard).
    ``key`` is the run's secret split key: a job travels only to the custodian's own
    processes (a local pool, or a Dask cluster the custodian runs)."""

    source: Source
    shard: int | None  # None: the whole source, read in order
    columns: Mapping[str, Column]
    root: Path  # the shard's private folder
    discretiser: Discretiser | None
    key: bytes = field(repr=False)  # never in a log line of a worker
    split: bool
    hold: bool  # hold one chunk's hashes in memory (the only shard)
    keep_rows: bool
    candidates: int  # K
    chunk_rows: int


@dataclass(frozen=True)
class ShardDone:
    """What a shard reports back: private counts and sizes, never a row."""

    rows: int
    counts: dict[str, dict[str, int]]
    smallest: np.ndarray  # its K smallest priorities
    held: np.ndarray | None  # the held hashes (one chunk, ``hold``)


def ingest_shard(job: ShardJob) -> ShardDone:
    """Pass 1 over one shard: domain rules, then, per chunk and in the shard's row
    order, codes, facts, rows (if kept), sample candidates and bucketed hashes, under
    ``job.root``."""
    names = list(job.columns)
    counts: list[dict[str, dict[str, int]]] = []
    seed = hashlib.blake2b(b"samples%d" % (job.shard or 0), key=job.key, digest_size=8).digest()
    candidates = _Candidates(job.root / "candidates", job.candidates, _rng(seed))
    resolved = all(getattr(c, "declared", True) for c in job.columns.values())
    writer = SourceWriter(job.root, keep_rows=job.keep_rows or not resolved)
    disc = job.discretiser
    codes = CodeWriter(job.root / "codes", disc.names, list(disc.sizes.values())) if disc else None
    buckets = _Buckets(job.root / "buckets", hold=job.hold) if job.split else None
    start = 0
    for chunk in read_chunks(job.source, job.columns, rows=job.chunk_rows, shard=job.shard):
        frame, chunk_counts = enforce_frame(chunk, job.columns)
        counts.append(chunk_counts)
        rows = frame[names].reset_index(drop=True)
        writer.add(rows, row_facts(rows, job.columns) if resolved else None)
        if codes is not None and disc is not None:
            codes.append(disc.encode(rows[disc.names]).to_numpy().T)
        if buckets is not None:
            buckets.add(content_hashes(rows))
        candidates.add(rows.assign(**{ORDER: np.arange(start, start + len(rows))}))
        start += len(rows)
    writer.close()
    if codes is not None:
        codes.close()
    if buckets is not None:
        buckets.close()
    held = buckets.held if buckets is not None else None
    return ShardDone(start, _sum_counts(counts), candidates.smallest, held)


def _rng(seed: bytes) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(seed, "little"))


@dataclass(frozen=True)
class Ingested:
    """Where ingestion put the rows (the source's folder) and its private counts."""

    train: StoredPart
    holdout: StoredPart | None
    codes: SensitiveCodes | None
    counts: dict[str, dict[str, int]]
    rows: tuple[int, int]  # rows of each part (private)


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
    keep_rows: bool,
    chunk_rows: int = CHUNK_ROWS,
    executor: Executor | None = None,
) -> Ingested:
    """Read ``source`` once into the folder ``root`` (see the module docstring).
    ``fraction``: the holdout share (None: every row is in one part, e.g. a separate
    holdout source); ``discretiser``: the domain of the code store (None: no code
    store); ``keep_rows``: keep the rows themselves (for a generator that reads rows);
    ``executor``: where the shards of a multi-file Parquet dataset run (a process pool,
    a Dask client's executor; None: here, one after the other). The outputs do not
    depend on the executor."""
    names = list(columns)
    share = 1.0 if fraction is None else min(float(fraction), 1.0 - float(fraction))
    wanted = int(np.ceil(sample_rows / max(share, 1e-9) * (SAMPLE_SLACK if fraction else 1.0)))
    count = shards(source)
    work = private_dir(root / "work")
    jobs = [
        ShardJob(
            source=source,
            shard=None if count == 1 else i,
            columns=dict(columns),
            root=work / f"s{i:05d}",
            discretiser=discretiser,
            key=key,
            split=fraction is not None,
            hold=count == 1,
            keep_rows=keep_rows,
            candidates=wanted,
            chunk_rows=chunk_rows,
        )
        for i in range(count)
    ]
    try:
        finished = (
            map(ingest_shard, jobs)
            if executor is None or count == 1
            else executor.map(ingest_shard, jobs)
        )
        done, smallest = [], np.empty(0)
        for shard in finished:  # in shard order, each kept without its priorities
            smallest = _smallest(np.concatenate([smallest, shard.smallest]), wanted)
            done.append(ShardDone(shard.rows, shard.counts, np.empty(0), shard.held))
        offsets = np.concatenate([[0], np.cumsum([d.rows for d in done])]).astype(np.int64)
        total = int(offsets[-1])
        counts = _sum_counts(d.counts for d in done)
        _merge(root, [job.root for job in jobs], total, discretiser)
        holdout = 0
        if fraction is not None:
            holdout = _split(jobs, done, offsets, root / SIDES, fraction=float(fraction), key=key)
        rows = (total - holdout, holdout)
        if rows[0] == 0 or (fraction is not None and rows[1] == 0):
            part = f"the {'holdout' if rows[0] else 'training'} part of " if fraction else ""
            raise SchemaMismatchError(f"{part}{label} has too few rows")
        bits = np.fromfile(root / SIDES, dtype=np.uint8) if fraction is not None else None
        threshold = _threshold(smallest, wanted)
        samples = [_Sample(sample_rows), _Sample(sample_rows)]
        for job, offset in zip(jobs, offsets):
            for path in sorted((job.root / "candidates").glob("c*.parquet")):
                found = pd.read_parquet(path)
                found = found[found[PRIORITY].to_numpy() <= threshold]
                found = found.assign(**{ORDER: found[ORDER].to_numpy(np.int64) + offset})
                _add_to_samples(samples, found, bits)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for sample, target in zip(samples, sample_paths):
        if target is not None:
            frame = sample.result(names)
            Workspace(target.parent).save_table(SensitiveTable(frame, label="sample"), target)
    select = Selection(root / SIDES, 0) if fraction is not None else None
    store = SensitiveCodes(root / "codes", label="codes", select=select) if discretiser else None
    parts = (
        (StoredPart(root, f"{label}:train", 0), StoredPart(root, f"{label}:holdout", 1))
        if fraction is not None
        else (StoredPart(root, label, None), None)
    )
    return Ingested(parts[0], parts[1], store, counts, rows)


def _add_to_samples(samples: list[_Sample], found: pd.DataFrame, bits: np.ndarray | None) -> None:
    """Candidates (with global ORDER numbers) into each part's sample."""
    if bits is None:
        samples[0].add(found, found[PRIORITY].to_numpy())
        return
    order = found[ORDER].to_numpy(np.int64)
    sides = (bits[order >> 3] >> (order & 7).astype(np.uint8)) & 1
    for side in (0, 1):
        mine = found[sides == side]
        samples[side].add(mine, mine[PRIORITY].to_numpy())


def _sum_counts(parts: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for part in parts:
        for name, entry in part.items():
            total = counts.setdefault(name, {})
            for k, v in entry.items():
                total[k] = total.get(k, 0) + int(v)
    return counts


def _merge(root: Path, shards_: list[Path], total: int, discretiser: Discretiser | None) -> None:
    """The shards' per-row files, concatenated in shard order into ``root``: code store,
    facts, rows (renumbered). One shard: moved."""
    for folder in ("codes", FACTS):
        present = [shard / folder for shard in shards_ if (shard / folder).is_dir()]
        if not present:  # no code store, or facts left to the scan
            continue
        target = root / folder
        if len(shards_) == 1:
            present[0].rename(target)
            continue
        private_dir(target)  # (a shard without the folder read no row)
        meta = read_meta(present[0], folder)
        for file in sorted(p.name for p in present[0].glob("c*.codes")):
            fd = os.open(target / file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                for part_folder in present:
                    with open(part_folder / file, "rb") as part:
                        shutil.copyfileobj(part, out, 16 * 2**20)
        write_meta(target, {**meta, "rows": total})
    index = 0
    for shard in shards_:
        for path in sorted((shard / ROWS).glob("part-*.parquet")):
            private_dir(root / ROWS)
            path.rename(root / ROWS / f"part-{index:05d}.parquet")
            index += 1


def _split(
    jobs: list[ShardJob],
    done: list[ShardDone],
    offsets: np.ndarray,
    path: Path,
    *,
    fraction: float,
    key: bytes,
) -> int:
    """The coins of every row, to ``path`` (one bit a row); returns the holdout rows.
    One bucket at a time, the shards' pairs in shard order (the source's row order)."""
    bits = np.zeros(-(-int(offsets[-1]) // 8), dtype=np.uint8)
    holdout = 0
    if len(done) == 1 and done[0].held is not None:  # one chunk: in memory
        held = done[0].held
        rows = np.arange(len(held), dtype=np.uint64)
        holdout += _set_bits(bits, rows, holdout_coins(held, fraction=fraction, key=key))
    for b in range(BUCKETS):
        pieces = []
        for job, offset in zip(jobs, offsets):
            file = bucket_file(job.root / "buckets", b)
            if file.exists():
                pairs = np.fromfile(file, dtype="<u8").reshape(-1, 2)
                pairs[:, 1] += np.uint64(offset)
                pieces.append(pairs)
        if pieces:
            pairs = np.concatenate(pieces)
            coins = holdout_coins(pairs[:, 0], fraction=fraction, key=key)
            holdout += _set_bits(bits, pairs[:, 1], coins)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bits.tobytes())
    return holdout


def _set_bits(bits: np.ndarray, rows: np.ndarray, on: np.ndarray) -> int:
    """Set the bits of ``rows[on]`` (little-endian bit order); returns how many."""
    rows = rows[on]
    shift = (rows & np.uint64(7)).astype(np.uint8)
    at = (rows >> np.uint64(3)).astype(np.int64)
    np.bitwise_or.at(bits, at, np.left_shift(np.uint8(1), shift))
    return len(rows)


def load_sample(path: Path, *, label: str) -> SensitiveTable:
    """A part's sample, as the checks read it."""
    return SensitiveTable(pd.read_parquet(path), label=label)
