"""Exact copies: rows hashed over the declared columns, each value read by its type.

The reading and the keys are :func:`synthrelease.values.row_keys`, shared with the
firewall's row scan (``synthrelease/private/rowscan.py``), so the gate and the firewall
agree on what a copied row is: numbers as float64, categories as declared labels with
unknown values in the ``other`` bucket, booleans by the accepted spellings, datetimes as
naive UTC; null equals null; an unreadable value is keyed by its raw text, apart from
every readable value and from null. Pure functions: ``validators/real.py`` feeds the
real rows in.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from synthrelease.values import row_keys


def share_in(rows: np.ndarray, reference: np.ndarray) -> float:
    return float(np.isin(rows, reference).mean())


def row_hashes(frame: pd.DataFrame, specs: Mapping[str, object]) -> np.ndarray:
    """One uint64 per row over the normalised declared columns."""
    return row_keys(frame, specs)
