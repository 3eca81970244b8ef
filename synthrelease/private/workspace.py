"""The private workspace: the only place where sensitive rows and fitted models rest.

Trusted reader. Directories are created 0700 and files 0600. Prefect tasks pass the
*paths* this module returns (references), never frames.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from synthrelease.errors import SourceError
from synthrelease.owner_only import FILE_MODE, private_dir
from synthrelease.private.table import SensitiveTable


@dataclass(frozen=True)
class RunPaths:
    """Where one run keeps its private files."""

    root: Path

    @property
    def split(self) -> Path:
        """The run's copies of sensitive rows (removed when the run ends)."""
        return self.root / "split"

    @property
    def train(self) -> Path:
        """The training rows the checks read (a bounded sample of a larger part)."""
        return self.split / "train.parquet"

    @property
    def holdout(self) -> Path:
        """The holdout rows the checks read (a bounded sample of a larger part)."""
        return self.split / "holdout.parquet"

    @property
    def source(self) -> Path:
        """The ingested source: codes, per-row facts, the split (:mod:`~synthrelease.private.parts`)."""
        return self.split / "source"

    @property
    def heldout(self) -> Path:
        """The ingested holdout source, where the spec declares one."""
        return self.split / "heldout"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def synthetic(self) -> Path:
        return self.root / "synthetic.parquet"

    @property
    def report(self) -> Path:
        return self.root / "report"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure(self) -> Workspace:
        private_dir(self.root)
        return self

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    def run(self, run_id: str) -> RunPaths:
        return RunPaths(private_dir(self.root / "runs" / run_id))

    # ------------------------------------------------------------------ sensitive files
    def save_table(self, table: SensitiveTable, path: Path) -> Path:
        private_dir(path.parent)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            table.reveal().to_parquet(fh, index=False)
        os.replace(tmp, path)
        return path

    @staticmethod
    def load_table(path: Path, *, label: str) -> SensitiveTable:
        if not path.exists():
            raise SourceError(f"workspace file missing: {path.name} (was the run cleaned up?)")
        return SensitiveTable(pd.read_parquet(path), label=label)

    @staticmethod
    def remove_splits(paths: RunPaths) -> None:
        """Delete the run's copies of sensitive rows (also called on failure)."""
        shutil.rmtree(paths.root / "split", ignore_errors=True)


def bernoulli_holdout(frame: pd.DataFrame, *, fraction: float, key: bytes) -> np.ndarray:
    """One independent coin per row, True (holdout) with probability ``fraction``.

    A row's coin is a keyed pseudo-random function (AES-128 under a secret ``key`` drawn
    per run from the noise source) of the row's content and its occurrence number among
    identical rows, so it does not depend on any other row: adding a row to the table
    never moves another row between the parts, and the training part of neighbouring
    tables differs by at most one added or removed row (add/remove neighbours, the
    relation every generator's accounting assumes). The part sizes are random.
    """
    if frame.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return holdout_coins(content_hashes(frame), fraction=fraction, key=key)


def content_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content (identical rows, identical hashes)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def holdout_coins(content: np.ndarray, *, fraction: float, key: bytes) -> np.ndarray:
    """The coins of :func:`bernoulli_holdout` from the rows' content hashes, in the rows'
    order: every row identical to another must be in ``content`` (the occurrence number
    counts them), which is why streaming ingestion splits hash buckets, not chunks.

    Each row's 16 bytes (content hash, occurrence number) are one AES block, enciphered
    under ``key`` (the ``cryptography`` package, one call for all rows: a block cipher
    is a pseudo-random permutation, and distinct rows are distinct blocks); the first 53
    bits of the block, as a fraction, are the row's uniform draw."""
    if len(key) < 16:
        raise ValueError("the split key must have at least 128 bits")
    if content.size == 0:
        return np.zeros(0, dtype=bool)
    occurrence = pd.Series(content).groupby(content).cumcount().to_numpy(dtype=np.uint64)
    blocks = np.stack([content, occurrence], axis=1).astype("<u8").tobytes()
    cipher = Cipher(algorithms.AES(bytes(key[:16])), modes.ECB()).encryptor()
    out = np.frombuffer(cipher.update(blocks) + cipher.finalize(), dtype="<u8")[::2]
    uniform = (out >> np.uint64(11)).astype(np.float64) / 2.0**53
    return uniform < float(fraction)


def split_table(
    table: SensitiveTable, *, fraction: float, key: bytes
) -> tuple[SensitiveTable, SensitiveTable]:
    """Bernoulli train/holdout split (:func:`bernoulli_holdout`). Holdout rows are used
    only by the internal checks."""
    frame = table.reveal()
    holdout_mask = bernoulli_holdout(frame, fraction=fraction, key=key)
    holdout = frame[holdout_mask].reset_index(drop=True)
    train = frame[~holdout_mask].reset_index(drop=True)
    return (
        SensitiveTable(train, label=f"{table.label}:train"),
        SensitiveTable(holdout, label=f"{table.label}:holdout"),
    )
