"""Public choices for a drafted spec: generator, bins, and how thresholds are set.

Every function here is a function of *public* facts only (the column count and types,
the declared or drafted domain sizes, the target's name, the release's epsilon and
delta, and the row count the custodian declares or the draft rounded), never of the rows.
``spec draft`` calls them; ``synthrelease plan`` reports on what they chose.

How they were set (measured with ``bench/bench_first_try.py``
on the demo table and the public tables of ``tests/public_tables.py``):

- **generator**: AIM with its default workload (every 2-way marginal plus every 3-way
  marginal holding the target) when the spec has a target and at most
  :data:`AIM_MAX_COLUMNS` columns. On the drafted demo table (16 bins, epsilon 1) AIM
  measured a 2-way TVD of 0.042 and a synthetic-trained AUC of 0.896 (10 tries) against
  MST's 0.052 and 0.83 (2 tries). MST otherwise: with no target there is no workload to
  favour, and on wide tables AIM's rounds (16 x columns) and candidate search grow with
  the square of the column count (fitted on the 45-column RandHIE stand-in: AIM 250 s,
  MST 9 s);
- **bins** of a wide numeric column: the noise of one 2-way measurement (MST's sigma
  for ``columns`` at (epsilon, delta)) spread over bins x bins cells must stay a small
  share of the rows: ``bins = sqrt(BIN_NOISE_SHARE * rows / sigma)``, rounded down to a
  step of :data:`BIN_STEPS` and kept in [MIN_BINS, MAX_BINS]. Fewer rows, more columns or
  less epsilon give fewer, wider bins;
- **gate thresholds** of the marginal checks: the plan's predicted figure times
  :data:`THRESHOLD_MARGIN` (see :mod:`synthrelease.planning.plan`).
"""

from __future__ import annotations

import math

from synthrelease.generators.accounting import cdp_rho

AIM_MAX_COLUMNS = 30
MIN_BINS = 4
MAX_BINS = 32
BIN_STEPS = (4, 6, 8, 10, 12, 16, 20, 24, 32)
BIN_NOISE_SHARE = 0.3
THRESHOLD_MARGIN = 2.0
DEFAULT_ROWS_FOR_CHOICES = 10_000  # when nobody declared a row count


def choose_generator(*, columns: int, target: str | None) -> str:
    """``aim`` with a target on tables of at most AIM_MAX_COLUMNS columns, else ``mst``."""
    if target is not None and 3 <= columns <= AIM_MAX_COLUMNS:
        return "aim"
    return "mst"


def pair_sigma(*, epsilon: float, delta: float, columns: int) -> float:
    """MST's noise scale for one 2-way marginal (a third of rho over columns - 1 pairs):
    the reference noise level of a marginal release at (epsilon, delta)."""
    rho = cdp_rho(epsilon=epsilon, delta=delta)
    pairs = max(columns - 1, 1)
    return math.sqrt(pairs / (2.0 * rho / 3.0))


def suggest_bins(*, rows: int | None, epsilon: float, delta: float, columns: int) -> int:
    """Bins for a wide numeric column (see the module docstring)."""
    n = DEFAULT_ROWS_FOR_CHOICES if rows is None else max(int(rows), 1)
    sigma = pair_sigma(epsilon=epsilon, delta=delta, columns=columns)
    raw = math.sqrt(BIN_NOISE_SHARE * n / sigma)
    fitting = [b for b in BIN_STEPS if b <= raw]
    bins = fitting[-1] if fitting else BIN_STEPS[0]
    return max(MIN_BINS, min(MAX_BINS, bins))


def round_rows(rows: int) -> int:
    """A row count rounded *down* to two significant digits (what a plain draft writes
    as ``expected_rows``: coarse, and labelled NOT DP)."""
    if rows < 100:
        return max(int(rows), 1)
    step = 10 ** (int(math.floor(math.log10(rows))) - 1)
    return int(rows // step * step)
