"""The firewall's row scan: no release table may hold copies of sensitive rows.

Trusted reader (``reveal()``): it compares every row of each table bound for a release
with the real training and holdout rows and answers pass or fail only. No count, share
or row leaves this module, in its return value, its errors or its logs.

Rows are compared on the declared columns after normalising each value per declared
type (categories outside the declared set become the ``other`` label, as the generator
would write them). A table fails when

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
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from synthrelease.errors import FirewallError
from synthrelease.firewall import RowScanPass
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn

log = logging.getLogger(__name__)

HIGH_RESOLUTION = 10_000
DEFAULT_TOLERANCE = 0.1
_NULL = "\x00null"
_TRUE = {"true", "1", "yes", "t", "y", "1.0"}


def _high_resolution(column: Any) -> bool:
    if isinstance(column, DatetimeColumn):
        return True
    if isinstance(column, NumericalColumn):
        return not column.integer or (column.upper - column.lower + 1) > HIGH_RESOLUTION
    return False


def _normalise(frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for name, col in columns.items():
        if name not in frame.columns:
            raise FirewallError(f"row scan: a table lacks the declared column {name!r}")
        v = frame[name]
        null = v.isna().to_numpy()
        if isinstance(col, CategoricalColumn):
            text = np.array([_NULL if n else str(x) for x, n in zip(v.to_numpy(dtype=object), null)],
                            dtype=object)
            if col.other is not None:
                known = set(col.categories) | {_NULL}
                text = np.array([t if t in known else col.other for t in text], dtype=object)
            out[name] = text
        elif isinstance(col, BooleanColumn):
            vals = v.astype(object).to_numpy()
            f = np.array([np.inf if n else float(str(x).strip().lower() in _TRUE) for x, n in zip(vals, null)])
            out[name] = f
        elif isinstance(col, DatetimeColumn):
            stamps = pd.to_datetime(v, errors="coerce", format="mixed", utc=True).dt.tz_convert(None)
            ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            out[name] = np.where(stamps.isna().to_numpy(), np.iinfo(np.int64).min, ns)
        else:
            x = pd.to_numeric(v, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) + 0.0
            out[name] = np.where(np.isnan(x), np.inf, x)
    return pd.DataFrame(out)


def _hashes(norm: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(norm, index=False).to_numpy()


def _distinctive(real: pd.DataFrame, columns: Mapping[str, Any]) -> np.ndarray:
    """Mask of real rows holding a value unique in the real data in a high-res column."""
    mask = np.zeros(len(real), dtype=bool)
    for name, col in columns.items():
        if not _high_resolution(col):
            continue
        values = real[name]
        counts = values.map(values.value_counts())
        mask |= (counts.to_numpy() == 1) & ~np.isin(values.to_numpy(), [np.inf, np.iinfo(np.int64).min])
    return mask


def scan_tables(
    tables: Mapping[str, Path],
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    columns: Mapping[str, Any],
    tolerance: float = DEFAULT_TOLERANCE,
) -> RowScanPass:
    """Pass (a :class:`RowScanPass` naming the exact bytes scanned) or raise
    :class:`FirewallError` naming only the table."""
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    train_norm = _normalise(train.reveal(), columns)
    holdout_norm = _normalise(holdout.reveal(), columns)
    real_norm = pd.concat([train_norm, holdout_norm], ignore_index=True)
    train_h, holdout_h = _hashes(train_norm), _hashes(holdout_norm)
    real_h = np.concatenate([train_h, holdout_h])
    distinctive = np.unique(real_h[_distinctive(real_norm, columns)])
    baseline_t = float(np.isin(holdout_h, train_h).mean()) if len(holdout_h) else 0.0
    baseline_h = float(np.isin(train_h, holdout_h).mean()) if len(train_h) else 0.0
    passed: set[str] = set()
    for rel, path in tables.items():
        data = Path(path).read_bytes()
        table_h = _hashes(_normalise(pd.read_parquet(io.BytesIO(data)), columns))
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
