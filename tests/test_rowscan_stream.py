"""The firewall's row scan streams the real rows (synthrelease/private/rowscan.py): over a
part on disk (a StoredPart: several files, small chunks, its rows' facts stored by
ingestion or, for a part stored before its domain was resolved, computed from its rows)
it judges every table as the in-memory scan of the same rows does, and as the scan's
rules read over whole frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthrelease.errors import FirewallError
from synthrelease.private import rowscan
from synthrelease.private.parts import SourceWriter, StoredPart
from synthrelease.private.rowscan import row_facts, scan_tables
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.store import sha256_file
from synthrelease.values import normalise, row_keys

COLUMNS = {
    "x": NumericalColumn(type="numerical", lower=-100, upper=100, nullable=True),  # high-res
    "when": DatetimeColumn(  # high-res
        type="datetime", lower="2000-01-01", upper="2030-01-01", nullable=True
    ),
    "big": NumericalColumn(  # high-res (integer, more than HIGH_RESOLUTION values)
        type="numerical", lower=0, upper=1_000_000, integer=True, nullable=True
    ),
    "n": NumericalColumn(type="numerical", lower=0, upper=5, integer=True),
    "c": CategoricalColumn(type="categorical", categories=["a", "b", "c"], other="other"),
    "k": CategoricalColumn(type="categorical", categories=["x", "y"], nullable=True),
}
HIGH = ("x", "when", "big")
# pandas warns on concatenating a file whose column is all null (the reference's frames)
pytestmark = pytest.mark.filterwarnings("ignore:The behavior of DataFrame concatenation")


# ------------------------------------------------------------------ the rules, in memory
def _reference(
    table: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    train_sample: pd.DataFrame | None = None,
    holdout_sample: pd.DataFrame | None = None,
) -> str | None:
    """The scan as it read whole frames (before streaming): None (pass), "distinctive"
    or "chance"."""
    real = pd.concat([train, holdout], ignore_index=True)
    train_h, holdout_h = row_keys(train, COLUMNS), row_keys(holdout, COLUMNS)
    real_h = np.concatenate([train_h, holdout_h])
    distinctive = np.unique(real_h[_distinctive_mask(real)])
    ts = train_h if train_sample is None else row_keys(train_sample, COLUMNS)
    hs = holdout_h if holdout_sample is None else row_keys(holdout_sample, COLUMNS)
    baseline_t = float(np.isin(hs, train_h).mean()) if len(hs) else 0.0
    baseline_h = float(np.isin(ts, holdout_h).mean()) if len(ts) else 0.0
    table_h = row_keys(table, COLUMNS)
    if np.isin(table_h, distinctive).any():
        return "distinctive"
    if len(table_h) and (
        float(np.isin(table_h, train_h).mean()) > baseline_t + rowscan.DEFAULT_TOLERANCE
        or float(np.isin(table_h, holdout_h).mean()) > baseline_h + rowscan.DEFAULT_TOLERANCE
    ):
        return "chance"
    return None


def _distinctive_mask(real: pd.DataFrame) -> np.ndarray:
    mask = np.zeros(len(real), dtype=bool)
    for name in HIGH:
        norm = normalise(real[name], COLUMNS[name])
        values = norm.values.reset_index(drop=True)
        counts = values.map(values.value_counts()).to_numpy()
        mask |= norm.readable & (counts == 1)
    return mask


def _outcome(path: Path, train, holdout, **samples) -> str | None:
    try:
        scanned = scan_tables(
            {"t.parquet": path}, train=train, holdout=holdout, columns=COLUMNS, **samples
        )
    except FirewallError as err:
        assert str(err).startswith("row scan: 't.parquet' holds rows identical")
        return "distinctive" if "a distinctive real row" in str(err) else "chance"
    assert scanned.tables == {sha256_file(path)}
    return None


# ------------------------------------------------------------------------------ the data
def _rows(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Rows drawn from small pools (repeats and singletons alike), with nulls; ``shift``
    moves the high-resolution values off the real pools."""
    x = np.round(rng.normal(0, 3, size=n // 2), 2)[rng.integers(0, n // 2, size=n)] + shift
    x[rng.random(n) < 0.2] = np.nan
    days = rng.integers(0, 365, size=n // 2)[rng.integers(0, n // 2, size=n)]
    when = pd.Series(pd.Timestamp("2012-03-01") + pd.to_timedelta(days, unit="D"))
    when += pd.to_timedelta(int(shift * 1000), unit="s")
    when[rng.random(n) < 0.2] = pd.NaT
    big = rng.integers(0, 1_000_000, size=n // 3)[rng.integers(0, n // 3, size=n)].astype(float)
    big[rng.random(n) < 0.7] = np.nan
    if shift:
        big += 0.5  # never a real value (and outside the declared integers: read as is)
    return pd.DataFrame(
        {
            "x": x,
            "when": when,
            "big": big,
            "n": rng.integers(0, 3, size=n),
            "c": rng.choice(["a", "b", "c", "d"], size=n, p=[0.5, 0.3, 0.15, 0.05]),
            "k": rng.choice(np.array(["x", "y", None], dtype=object), size=n, p=[0.6, 0.3, 0.1]),
        }
    )


def _real(seed: int, n: int = 240) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = _rows(rng, n)
    rows = pd.concat([rows, rows.iloc[rng.integers(0, n, size=n // 8)]], ignore_index=True)
    rows = rows.iloc[rng.permutation(len(rows))].reset_index(drop=True)
    cut = int(len(rows) * 0.6)
    return rows.iloc[:cut].reset_index(drop=True), rows.iloc[cut:].reset_index(drop=True)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The same values as text (another file schema; one unreadable number added)."""
    out = frame.astype({"x": object, "when": object})
    out["x"] = [None if pd.isna(v) else repr(float(v)) for v in frame["x"]]
    out["when"] = [None if pd.isna(v) else v.isoformat() for v in frame["when"]]
    if len(out):
        out.loc[0, "x"] = "n/a"
    return out


def _stored(
    root: Path, label: str, frames: list[pd.DataFrame], *, facts: bool = True
) -> StoredPart:
    """``frames`` as a source folder ingestion writes: the rows, and their facts unless
    ``facts`` is False (the scan then computes them from the rows)."""
    writer = SourceWriter(root, keep_rows=True)
    for frame in frames:
        writer.add(frame, row_facts(frame, COLUMNS) if facts else None)
    writer.close()
    part = StoredPart(root, label)
    assert part.has_facts == facts
    return part


def _parts(
    root: Path, frame: pd.DataFrame, rng: np.random.Generator, label: str, *, facts: bool = True
) -> StoredPart:
    """``frame`` in several files of random sizes, one of them written as text."""
    cuts = np.sort(rng.choice(np.arange(1, len(frame)), size=3, replace=False))
    pieces = [
        frame.iloc[piece].reset_index(drop=True) for piece in np.split(np.arange(len(frame)), cuts)
    ]
    return _stored(
        root, label, [_as_text(p) if i == 1 else p for i, p in enumerate(pieces)], facts=facts
    )


def _loaded(parts: StoredPart) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in parts.files()], ignore_index=True)


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setattr(rowscan, "CHUNK_ROWS", 16)


def _write(tmp_path: Path, frame: pd.DataFrame, name: str) -> Path:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return path


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize(("seed", "facts"), [(0, True), (1, True), (2, False), (3, True)])
def test_the_streamed_scan_judges_as_the_in_memory_scan(tmp_path, seed, facts):
    rng = np.random.default_rng(100 + seed)
    train_rows, holdout_rows = _real(seed)
    train_parts = _parts(tmp_path / "train", train_rows, rng, "t", facts=facts)
    holdout_parts = _parts(tmp_path / "holdout", holdout_rows, rng, "h", facts=facts)
    assert len(list(train_parts.chunks(rows=rowscan.CHUNK_ROWS))) > len(train_parts.files()) > 2
    train, holdout = _loaded(train_parts), _loaded(holdout_parts)  # as the files read back
    real = pd.concat([train, holdout], ignore_index=True)
    rows = pd.concat([train_rows, holdout_rows], ignore_index=True)  # the same rows, typed
    keys = row_keys(real, COLUMNS)
    same = keys == row_keys(rows, COLUMNS)  # all but the unreadable one
    distinctive = _distinctive_mask(real) & same
    repeated = same & ~distinctive & pd.Series(keys).duplicated(keep=False).to_numpy()
    in_train = np.arange(len(real)) < len(train)
    assert (distinctive & in_train).any() and (distinctive & ~in_train).any() and repeated.any()
    honest = _rows(rng, 150, shift=0.005)
    cases = {
        "honest": (honest, None),
        "distinctive from training": (
            pd.concat([honest, rows.iloc[np.flatnonzero(distinctive & in_train)[:1]]]),
            "distinctive",
        ),
        "distinctive from holdout": (
            pd.concat([honest, rows.iloc[np.flatnonzero(distinctive & ~in_train)[:1]]]),
            "distinctive",
        ),
        "excess": (
            pd.concat([honest.iloc[:60], rows.iloc[rng.choice(np.flatnonzero(repeated), 90)]]),
            "chance",
        ),
    }
    for i in range(3):  # random mixtures of real and fresh rows
        share = rng.random()
        copied = rows.iloc[rng.integers(0, len(rows), size=int(150 * share))]
        cases[f"mixture {i}"] = (pd.concat([honest.iloc[: 150 - len(copied)], copied]), "?")
    in_memory = (SensitiveTable(train, label="t"), SensitiveTable(holdout, label="h"))
    for name, (table, expected) in cases.items():
        path = _write(tmp_path, table.reset_index(drop=True), name)
        reference = _reference(pd.read_parquet(path), train, holdout)
        assert expected in ("?", reference), name
        assert _outcome(path, *in_memory) == reference, name
        assert _outcome(path, train_parts, holdout_parts) == reference, name
        samples = {"train_sample": in_memory[0], "holdout_sample": in_memory[1]}
        assert _outcome(path, train_parts, holdout_parts, **samples) == reference, name
    outcomes = {
        _reference(pd.read_parquet(tmp_path / f"{n}.parquet"), train, holdout) for n in cases
    }
    assert {None, "distinctive", "chance"} <= outcomes


def _one_row(x: float, c: str, day: int | None = None) -> pd.DataFrame:
    when = pd.NaT if day is None else pd.Timestamp("2015-01-01") + pd.Timedelta(days=day)
    return pd.DataFrame({"x": [x], "when": [when], "big": [np.nan], "n": [1], "c": [c], "k": ["x"]})


@pytest.mark.parametrize("twin", ["none", "same chunk", "other chunk", "other part"])
def test_a_value_is_distinctive_only_if_no_other_real_row_holds_it(tmp_path, twin):
    """The second stream counts a candidate's value over every chunk of both parts."""
    rng = np.random.default_rng(7)
    train, holdout = _real(3)
    target = _one_row(42.125, "a")  # a value no pool holds
    twin_row = _one_row(42.125, "b")  # the same value in another row
    train = pd.concat([target, train], ignore_index=True)
    if twin == "same chunk":
        train = pd.concat([train.iloc[:1], twin_row, train.iloc[1:]], ignore_index=True)
    elif twin == "other chunk":
        train = pd.concat([train, twin_row], ignore_index=True)
    elif twin == "other part":
        holdout = pd.concat([holdout, twin_row], ignore_index=True)
    train_parts = _parts(tmp_path / "train", train, rng, "t")
    holdout_parts = _parts(tmp_path / "holdout", holdout, rng, "h")
    table = pd.concat([_rows(rng, 150, shift=0.005), target], ignore_index=True)
    path = _write(tmp_path, table, "t")
    expected = "distinctive" if twin == "none" else None
    assert _reference(table, _loaded(train_parts), _loaded(holdout_parts)) == expected
    assert _outcome(path, train_parts, holdout_parts) == expected
    sensitive = (SensitiveTable(train, label="t"), SensitiveTable(holdout, label="h"))
    assert _outcome(path, *sensitive) == expected


def test_a_datetime_alone_makes_a_row_distinctive(tmp_path):
    train, holdout = _real(4)
    target = _one_row(np.nan, "c", day=4000)
    train_parts = _stored(tmp_path / "train", "t", [train, target])
    holdout_parts = _stored(tmp_path / "holdout", "h", [holdout])
    table = pd.concat([_rows(np.random.default_rng(1), 100, shift=0.005), target])
    path = _write(tmp_path, table.reset_index(drop=True), "t")
    assert _outcome(path, train_parts, holdout_parts) == "distinctive"
    twin = [holdout, target.assign(c="a")]  # the same datetime, another row
    holdout_parts = _stored(tmp_path / "holdout2", "h", twin)
    assert _outcome(path, train_parts, holdout_parts) is None


def test_the_baseline_reads_the_sample_or_the_first_rows(tmp_path, monkeypatch):
    """Without a sample, a StoredPart's baseline is its first BASELINE_ROWS rows; a sample
    given is read instead."""
    rng = np.random.default_rng(11)
    train = _rows(rng, 200)
    train = pd.concat([train, train], ignore_index=True)  # every row repeated: never distinctive
    holdout = pd.concat([train.iloc[:20], _rows(rng, 200, shift=0.005)], ignore_index=True)
    pieces = [train.iloc[start : start + 150] for start in range(0, len(train), 150)]
    train_parts = _stored(tmp_path / "t", "t", pieces)
    holdout_parts = _stored(tmp_path / "h", "h", [holdout.iloc[:15], holdout.iloc[15:]])
    # (the first 20 holdout rows copy training rows)
    table = pd.concat([train.iloc[:60], _rows(rng, 60, shift=0.005)], ignore_index=True)
    path = _write(tmp_path, table, "t")
    assert _reference(table, train, holdout) == "chance"  # half copies, baseline 20/420
    assert _outcome(path, train_parts, holdout_parts) == "chance"
    monkeypatch.setattr(rowscan, "BASELINE_ROWS", 20)
    assert _reference(table, train, holdout, train.iloc[:20], holdout.iloc[:20]) is None
    assert _outcome(path, train_parts, holdout_parts) is None  # baseline 20/20
    whole = SensitiveTable(holdout, label="h")
    assert _outcome(path, train_parts, holdout_parts, holdout_sample=whole) == "chance"


def test_parts_of_another_kind_are_refused(tmp_path):
    path = _write(tmp_path, _rows(np.random.default_rng(0), 5), "t")
    train, holdout = _real(0)
    with pytest.raises(TypeError):
        scan_tables({"t": path}, train=train, holdout=holdout, columns=COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_tables(
            {"t": path},
            train=SensitiveTable(train, label="t"),
            holdout=SensitiveTable(holdout, label="h"),
            columns=COLUMNS,
            train_sample=train,  # type: ignore[arg-type]
        )
