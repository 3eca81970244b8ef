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
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from synthrelease.errors import FirewallError
from synthrelease.firewall import RowScanPass
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, DatetimeColumn, NumericalColumn
from synthrelease.values import normalise, row_keys

log = logging.getLogger(__name__)

HIGH_RESOLUTION = 10_000
DEFAULT_TOLERANCE = 0.1


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


def _distinctive(real: pd.DataFrame, columns: Mapping[str, Column]) -> np.ndarray:
    """Mask of real rows holding a value unique in the real data in a high-res column
    (a value as read; null and unreadable entries are never distinctive)."""
    mask = np.zeros(len(real), dtype=bool)
    for name, col in columns.items():
        if not _high_resolution(col):
            continue
        norm = normalise(real[name], col)
        values = norm.values.reset_index(drop=True)
        counts = values.map(values.value_counts()).to_numpy()
        mask |= norm.readable & (counts == 1)
    return mask


def scan_tables(
    tables: Mapping[str, Path],
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    columns: Mapping[str, Column],
    tolerance: float = DEFAULT_TOLERANCE,
) -> RowScanPass:
    """Pass (a :class:`RowScanPass` naming the exact bytes scanned) or raise
    :class:`FirewallError` naming only the table."""
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    real = pd.concat([train.reveal(), holdout.reveal()], ignore_index=True)
    train_h, holdout_h = _hashes(train.reveal(), columns), _hashes(holdout.reveal(), columns)
    real_h = np.concatenate([train_h, holdout_h])
    distinctive = np.unique(real_h[_distinctive(real, columns)])
    del real
    baseline_t = float(np.isin(holdout_h, train_h).mean()) if len(holdout_h) else 0.0
    baseline_h = float(np.isin(train_h, holdout_h).mean()) if len(train_h) else 0.0
    passed: set[str] = set()
    for rel, path in tables.items():
        data = Path(path).read_bytes()
        table_h = _hashes(pd.read_parquet(io.BytesIO(data)), columns)
        copies = bool(np.isin(table_h, distinctive).any())
        excess = len(table_h) > 0 and (
            float(np.isin(table_h, train_h).mean()) > baseline_t + tolerance
            or float(np.isin(table_h, holdout_h).mean()) > baseline_h + tolerance
        )
        if copies or excess:
            log.warning("row scan refused a table", extra={"table": rel})
            raise FirewallError(
                f"row scan: {rel!r} holds rows identical to sensitive rows "
                f"({'a distinctive real row' if copies else 'more copies than chance'}); "
                "nothing was published"
            )
        passed.add(hashlib.sha256(data).hexdigest())
    log.info("row scan passed", extra={"tables": len(passed)})
    return RowScanPass(tables=frozenset(passed))
