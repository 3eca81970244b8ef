"""The firewall's row scan: no release table may hold copies of sensitive rows.

Trusted reader (``reveal()``): it compares every row of each table bound for a release
with the real training and holdout rows and answers pass or fail only. No count, share
or row leaves this module, in its return value, its errors or its logs.

Rows are compared on the declared columns, each value read by its declared type with
:mod:`synthrelease.values` (categories outside the declared set become the ``other``
label, as the generator would write them; an unreadable value is keyed by its raw text,
apart from every readable value and from null): :func:`synthrelease.values.row_keys`,
the very keys of the gate's copy check, so the two agree on what a copied row is. A
table fails when

1. **a distinctive real row is copied**: some row equals a real row that holds a value
   seen only once in the real data in a *high-resolution* column (non-integer numerical,
   datetime, or an integer column declaring more than ``HIGH_RESOLUTION`` values). A DP
   generator draws such values from a continuous range, so reproducing the whole row by
   chance has negligible probability: such a match is a copy (a leaked row, a wrong
   file, a memorising generator); or
2. **copies are more frequent than chance**: the share of table rows equal to some
   training row exceeds the share of *holdout* rows equal to some training row (the
   collision rate of a fresh sample from the same population) by more than
   ``tolerance``; and the same with the roles of training and holdout swapped.

Low-cardinality tables collide by chance (a row of common categories is no secret);
rule 2 tolerates that, rule 1 stays strict. The gate's ``max_exact_copy_excess`` is the
finer statistical test; this scan is the last check on the exact bytes published.

**Bounded memory.** A part (training or holdout) is a :class:`SensitiveTable` (one chunk)
or a :class:`StoredPart` whose per-row facts (:func:`row_facts`: the copy key and the
high-resolution values as read, computed once by ingestion) are read ``CHUNK_ROWS`` rows
at a time; what the scan holds grows with the tables scanned and the baseline samples,
never with the real row count:

- the tables' keys first (one uint64 per row), then one stream over the real facts
  keeps only the *watched* keys (the tables' and the samples') found in each part, and
  the real rows equal to some table row (the *candidates*: one per distinct key, their
  high-resolution values as read);
- only when there are candidates, a second stream counts the real occurrences
  (training and holdout) of the candidates' values; a candidate is distinctive when one
  of them occurs once. Rows with one key hold the same values (as read), so this equals
  counting every value of the real data;
- rule 2's baselines read the samples: the share of the holdout sample's rows equal to
  some training row, and the reverse. A sample left out is the whole part for a
  :class:`SensitiveTable` (today's figures, exactly) and the first ``BASELINE_ROWS``
  rows of a :class:`StoredPart` (the parts are the source's rows in file order after the
  Bernoulli split: pass a uniform sample where the source is ordered).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Generator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from synthrelease.errors import FirewallError
from synthrelease.firewall import RowScanPass
from synthrelease.private.parts import CHUNK_ROWS as PART_CHUNK_ROWS
from synthrelease.private.parts import StoredPart
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, DatetimeColumn, NumericalColumn
from synthrelease.values import normalise, row_keys

log = logging.getLogger(__name__)

HIGH_RESOLUTION = 10_000
DEFAULT_TOLERANCE = 0.1
CHUNK_ROWS = PART_CHUNK_ROWS  # rows per chunk read from a StoredPart (read at each scan)
BASELINE_ROWS = 200_000  # rows of a StoredPart read for its baseline when no sample is given
KEY = "key"

Part = SensitiveTable | StoredPart
Facts = dict[str, np.ndarray]
_NO_KEYS = np.empty(0, dtype=np.uint64)


def _high_resolution(column: object) -> bool:
    if isinstance(column, DatetimeColumn):
        return True
    if isinstance(column, NumericalColumn):
        if not column.integer:
            return True
        assert column.lower is not None and column.upper is not None  # resolved columns only
        return (column.upper - column.lower + 1) > HIGH_RESOLUTION
    return False


def _hashes(frame: pd.DataFrame, columns: Mapping[str, Column]) -> np.ndarray:
    """One key per row: :func:`synthrelease.values.row_keys`, the gate's copy check's too."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise FirewallError(f"row scan: a table lacks the declared column {missing[0]!r}")
    return row_keys(frame, columns)


def _read(values: pd.Series, column: object) -> tuple[np.ndarray, np.ndarray]:
    """(values as read, readable) of a high-resolution column: floats, or datetimes as
    int64 nanoseconds; an entry that is not readable holds 0."""
    norm = normalise(values, column)
    if isinstance(column, DatetimeColumn):
        read = norm.values.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    else:
        read = norm.values.to_numpy(dtype=np.float64, na_value=np.nan)
    read[~norm.readable] = 0
    return read, norm.readable


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``np.isin(keys, sorted_keys)`` for a sorted, unique ``sorted_keys``, by binary
    search: no re-sort of the watched keys for every chunk (np.isin and intersect1d
    sort them each call, which cost minutes over a million-row part)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def high_resolution(columns: Mapping[str, Column]) -> dict[str, Column]:
    """The declared columns whose values make a row distinctive (rule 1)."""
    return {name: col for name, col in columns.items() if _high_resolution(col)}


def row_facts(frame: pd.DataFrame, columns: Mapping[str, Column]) -> Facts:
    """What the scan needs of each real row: its copy key (``KEY``) and, per
    high-resolution column, its value as read (``v:<name>``) and whether it was read
    (``ok:<name>``). Ingestion stores them, so the scan never re-reads the rows."""
    facts = {KEY: _hashes(frame, columns)}
    for name, column in high_resolution(columns).items():
        facts[f"v:{name}"], facts[f"ok:{name}"] = _read(frame[name], column)
    return facts


def _facts(part: Part, columns: Mapping[str, Column]) -> Generator[Facts, None, None]:
    if isinstance(part, SensitiveTable):
        yield row_facts(part.reveal(), columns)
    elif part.has_facts:
        yield from part.facts(rows=CHUNK_ROWS)
    else:  # a part stored before its domain was resolved: its rows
        for chunk in part.chunks(rows=CHUNK_ROWS):
            yield row_facts(chunk.reveal(), columns)


def _sample_keys(
    part: Part, sample: SensitiveTable | None, columns: Mapping[str, Column]
) -> np.ndarray:
    """Keys of the baseline sample (see the module docstring for a sample left out)."""
    if sample is not None:
        return _hashes(sample.reveal(), columns)
    if isinstance(part, SensitiveTable):
        return _hashes(part.reveal(), columns)
    keys, held = [_NO_KEYS], 0
    chunks = _facts(part, columns)
    for facts in chunks:
        keys.append(facts[KEY][: BASELINE_ROWS - held])
        held += len(keys[-1])
        if held >= BASELINE_ROWS:
            break
    chunks.close()
    return np.concatenate(keys)


class _Candidates:
    """The real rows equal to some table row, one per distinct key, with their values in
    the high-resolution columns (as read)."""

    def __init__(self, high: Mapping[str, Column]) -> None:
        self.high = high
        self.keys = _NO_KEYS
        self.read: dict[str, list[np.ndarray]] = {name: [] for name in high}
        self.readable: dict[str, list[np.ndarray]] = {name: [] for name in high}

    def add(self, facts: Facts, watched: np.ndarray) -> None:
        if not self.high:
            return
        keys = facts[KEY]
        rows = np.flatnonzero(_member(keys, watched) & ~np.isin(keys, self.keys))
        if not len(rows):
            return
        new, first = np.unique(keys[rows], return_index=True)
        rows = rows[first]
        self.keys = np.concatenate([self.keys, new])
        for name in self.high:
            self.read[name].append(facts[f"v:{name}"][rows])
            self.readable[name].append(facts[f"ok:{name}"][rows])

    def distinctive(self, parts: tuple[Part, ...], columns: Mapping[str, Column]) -> np.ndarray:
        """Keys of the candidates holding a value that occurs once in ``parts``."""
        if not len(self.keys):
            return _NO_KEYS
        read = {name: np.concatenate(self.read[name]) for name in self.high}
        readable = {name: np.concatenate(self.readable[name]) for name in self.high}
        values = {name: np.unique(read[name][readable[name]]) for name in self.high}
        counts = {name: np.zeros(len(v), dtype=np.int64) for name, v in values.items()}
        for part in parts:  # the second stream: counts of the candidates' values only
            for facts in _facts(part, columns):
                for name in self.high:
                    seen = facts[f"v:{name}"][facts[f"ok:{name}"]]
                    seen = seen[_member(seen, values[name])]
                    where = np.searchsorted(values[name], seen)
                    counts[name] += np.bincount(where, minlength=len(values[name]))
        mask = np.zeros(len(self.keys), dtype=bool)
        for name in self.high:
            ok = readable[name]
            where = np.searchsorted(values[name], read[name][ok])
            mask[ok] |= counts[name][where] == 1
        return self.keys[mask]


def verdict(
    rel: str,
    *,
    copies: bool,
    shares: tuple[float, float],
    baselines: tuple[float, float],
    tolerance: float,
) -> None:
    """The scan's rules for one table, from its figures: it copies a distinctive real
    row (rule 1), or its shares of rows equal to a training, a holdout row exceed the
    baselines by more than ``tolerance`` (rule 2): :class:`FirewallError`, naming only
    the table."""
    excess = shares[0] > baselines[0] + tolerance or shares[1] > baselines[1] + tolerance
    if copies or excess:
        log.warning("row scan refused a table", extra={"table": rel})
        raise FirewallError(
            f"row scan: {rel!r} holds rows identical to sensitive rows "
            f"({'a distinctive real row' if copies else 'more copies than chance'}); "
            "nothing was published"
        )


def scan_tables(
    tables: Mapping[str, Path],
    *,
    train: Part,
    holdout: Part,
    columns: Mapping[str, Column],
    tolerance: float = DEFAULT_TOLERANCE,
    train_sample: SensitiveTable | None = None,
    holdout_sample: SensitiveTable | None = None,
) -> RowScanPass:
    """Pass (a :class:`RowScanPass` naming the exact bytes scanned) or raise
    :class:`FirewallError` naming only the table. ``train``/``holdout``: a part in
    memory or on disk; ``*_sample``: a uniform sample of it for rule 2's baseline."""
    for part in (train, holdout):
        if not isinstance(part, (SensitiveTable, StoredPart)):
            raise TypeError("train and holdout must be SensitiveTable or StoredPart")
    for sample in (train_sample, holdout_sample):
        if sample is not None and not isinstance(sample, SensitiveTable):
            raise TypeError("train_sample and holdout_sample must be SensitiveTable")
    scanned: list[tuple[str, str, np.ndarray]] = []  # (table, sha256, keys of its rows)
    for rel, path in tables.items():
        data = Path(path).read_bytes()
        keys = _hashes(pd.read_parquet(io.BytesIO(data)), columns)
        scanned.append((rel, hashlib.sha256(data).hexdigest(), keys))
        del data
    table_keys = np.unique(np.concatenate([_NO_KEYS, *(keys for _, _, keys in scanned)]))
    train_s = _sample_keys(train, train_sample, columns)
    holdout_s = _sample_keys(holdout, holdout_sample, columns)
    watched = np.unique(np.concatenate([table_keys, train_s, holdout_s]))
    candidates = _Candidates(high_resolution(columns))
    found: list[np.ndarray] = []  # the watched keys found in training, in holdout
    for part in (train, holdout):
        hits = [_NO_KEYS]
        for facts in _facts(part, columns):
            keys = facts[KEY]
            hits.append(keys[_member(keys, watched)])
            candidates.add(facts, table_keys)
        found.append(np.unique(np.concatenate(hits)))
    in_train, in_holdout = found
    distinctive = candidates.distinctive((train, holdout), columns)
    baseline_t = float(np.isin(holdout_s, in_train).mean()) if len(holdout_s) else 0.0
    baseline_h = float(np.isin(train_s, in_holdout).mean()) if len(train_s) else 0.0
    for rel, _, table_h in scanned:
        verdict(
            rel,
            copies=bool(np.isin(table_h, distinctive).any()),
            shares=(
                (
                    float(np.isin(table_h, in_train).mean()),
                    float(np.isin(table_h, in_holdout).mean()),
                )
                if len(table_h)
                else (0.0, 0.0)
            ),
            baselines=(baseline_t, baseline_h),
            tolerance=tolerance,
        )
    passed = frozenset(digest for _, digest, _ in scanned)
    log.info("row scan passed", extra={"tables": len(passed)})
    return RowScanPass(tables=passed)
