"""One value normaliser per declared column type (synthrelease/values.py), and the two copy
checks that use it: the gate's (validators/copies.py) and the firewall's row scan
(synthrelease/private/rowscan.py) must judge the same rows identical to a real row."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthrelease import values
from synthrelease.errors import FirewallError
from synthrelease.private.rowscan import scan_tables
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.validators.copies import row_hashes

ROOT = Path(__file__).resolve().parents[1]
LONG = "x" * 50_000
# The corpus: per declared column, (raw value, class). Values of one class must read as
# the same value (and so make the same row); "null" is no value; ("?", text) an
# unreadable value, equal only to the same raw text; ("out", v) a readable value outside
# the declared domain.
COLUMNS = {
    "id": NumericalColumn(type="numerical", lower=0, upper=1000),  # high-resolution
    "n": NumericalColumn(type="numerical", lower=0, upper=100, integer=True, nullable=True),
    "c": CategoricalColumn(
        type="categorical", categories=["a", "é", "3", LONG], other="other", nullable=True
    ),
    "k": CategoricalColumn(type="categorical", categories=["x", "y"], nullable=True),
    "b": BooleanColumn(type="boolean", nullable=True),
    "d": DatetimeColumn(type="datetime", lower="2000-01-01", upper="2030-01-01", nullable=True),
}
CORPUS: dict[str, list[tuple[object, object]]] = {
    "n": [
        (3, 3.0),
        (3.0, 3.0),
        ("3", 3.0),
        (" 3 ", 3.0),
        ("3.0", 3.0),
        ("3e0", 3.0),
        (np.int64(3), 3.0),
        (np.float32(3), 3.0),
        (0, 0.0),
        (-0.0, 0.0),
        ("-0", 0.0),
        (2.5, 2.5),
        ("2.50", 2.5),
        (150, ("out", 150.0)),
        ("1e300", ("out", 1e300)),
        (-7, ("out", -7.0)),
        (np.inf, ("out", np.inf)),
        ("inf", ("out", np.inf)),
        ("-inf", ("out", -np.inf)),
        (None, "null"),
        (np.nan, "null"),
        (pd.NA, "null"),
        ("abc", ("?", "abc")),
        ("", ("?", "")),
        (" ", ("?", " ")),
        ("nan", ("?", "nan")),
        ("3,5", ("?", "3,5")),
        ("1" * 400, ("?", "1" * 400)),
        ("٣", ("?", "٣")),
    ],
    "c": [
        ("a", "a"),
        ("é", "é"),
        ("3", "3"),
        (3, "3"),
        (np.int64(3), "3"),
        (LONG, LONG),
        # no stripping, case folding or unicode normalisation: these go to the bucket
        ("A", "other"),
        (" a", "other"),
        ("e\u0301", "other"),
        ("zzz", "other"),
        ("other", "other"),
        # a number with an integral value reads as its integer text; text is not rewritten
        (3.0, "3"),
        (np.float64(3.0), "3"),
        (np.float32(3.0), "3"),
        ("3.0", "other"),
        (" 3", "other"),
        (3.5, "other"),
        (True, "other"),
        (LONG + "y", "other"),
        ("", "other"),
        (None, "null"),
        (np.nan, "null"),
    ],
    "k": [
        ("x", "x"),
        ("y", "y"),
        ("q", ("out", "q")),
        ("X", ("out", "X")),
        (None, "null"),
    ],
    "b": [
        (True, True),
        (np.True_, True),
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("yes", True),
        ("YES", True),
        ("t", True),
        ("Y", True),
        ("1", True),
        (1, True),
        ("1.0", True),
        (1.0, True),
        (False, False),
        (np.False_, False),
        ("false", False),
        ("No", False),
        ("f", False),
        ("n", False),
        ("0", False),
        (0, False),
        ("0.0", False),
        (0.0, False),
        (None, "null"),
        (np.nan, "null"),
        (pd.NA, "null"),
        ("maybe", ("?", "maybe")),
        ("2", ("?", "2")),
        (2, ("?", "2")),
        ("", ("?", "")),
        ("ja", ("?", "ja")),
        ("1.00", ("?", "1.00")),
    ],
    "d": [
        ("2020-01-02", "t1"),
        ("2020-01-02 00:00:00", "t1"),
        (pd.Timestamp("2020-01-02"), "t1"),
        (dt.datetime(2020, 1, 2), "t1"),
        ("2020-01-02T01:00:00+01:00", "t1"),
        ("2020-01-02T00:00:00Z", "t1"),
        (pd.Timestamp("2020-01-02", tz="UTC"), "t1"),
        (pd.Timestamp("2020-01-01 19:00", tz="America/New_York"), "t1"),
        ("2020-01-02 00:00:01", "t2"),
        ("1990-05-06", ("out", "1990-05-06")),
        ("2262-01-01", ("out", "2262-01-01")),
        (None, "null"),
        (pd.NaT, "null"),
        (np.nan, "null"),
        ("3000-01-01", ("?", "3000-01-01")),
        ("not a date", ("?", "not a date")),
        ("2020-13-01", ("?", "2020-13-01")),
    ],
}
BASE = {"n": 5, "c": "a", "k": "x", "b": True, "d": "2010-06-01"}


def _series(raw: list[object]) -> pd.Series:
    return pd.Series(raw, dtype=object)


def _class(label: object) -> tuple[str, object]:
    """(kind, value) of a corpus class: null, unreadable, outside or a value."""
    if label == "null":
        return "null", None
    if isinstance(label, tuple):
        return label
    return "value", label


# ---------------------------------------------------------------------------- normalisers
@pytest.mark.parametrize("name", list(CORPUS))
def test_each_normaliser_reads_the_awkward_corpus(name):
    raw = [v for v, _ in CORPUS[name]]
    norm = values.normalise(_series(raw), COLUMNS[name])
    for i, (value, label) in enumerate(CORPUS[name]):
        kind, expected = _class(label)
        where = f"{name}[{i}] {value!r:.40}"
        assert norm.null[i] == (kind == "null"), where
        assert norm.unreadable[i] == (kind == "?"), where
        outside = kind == "out" or (name == "c" and label == "other")
        assert norm.outside[i] == outside, where
        got = norm.values.iloc[i]
        if kind in ("null", "?"):
            assert pd.isna(got), where
        elif name == "d":
            assert got == pd.Timestamp(
                {"t1": "2020-01-02", "t2": "2020-01-02 00:00:01"}.get(expected, expected)
            ), where
        else:
            assert got == expected, where


def test_canonical_types():
    assert values.numerical(_series(["3", 3])).values.dtype == np.float64
    assert str(values.boolean(_series(["yes", None])).values.dtype) == "boolean"
    assert values.datetime(_series(["2020-01-01+02:00"])).values.dtype == "datetime64[ns]"
    assert values.categorical(_series([3, None])).values.tolist() == ["3", None]
    assert np.signbit(values.numerical(_series([-0.0])).values.iloc[0]) == False  # noqa: E712


def test_whole_numbers_read_the_same_with_and_without_nulls():
    """A CSV column of whole numbers is int without nulls and float with them (pandas):
    both read as the same labels, ``"3"``, never ``"3.0"``."""
    ints = values.categorical(pd.Series([3, 1, -2, 0])).values.tolist()
    floats = values.categorical(pd.Series([3.0, 1.0, -2.0, -0.0, np.nan])).values.tolist()
    assert ints == ["3", "1", "-2", "0"] and floats == ["3", "1", "-2", "0", None]
    assert values.categorical(pd.Series(["3", "3.0", None])).values.tolist() == ["3", "3.0", None]
    assert values.categorical(pd.Series([2.5, np.inf, 1e20])).values.tolist() == [
        "2.5",
        "inf",
        "100000000000000000000",
    ]
    assert values.categorical(pd.Series([True, False])).values.tolist() == ["True", "False"]
    nullable = pd.Series([3, None], dtype="Int64")
    assert values.categorical(nullable).values.tolist() == ["3", None]
    declared = values.categorical(pd.Series([3.0, 4.0]), categories=("3",), other="other")
    assert declared.values.tolist() == ["3", "other"] and declared.outside.tolist() == [False, True]


def test_index_is_kept_and_masks_never_overlap():
    s = pd.Series(["1", "x", None, "500"], index=[10, 20, 30, 40], dtype=object)
    norm = values.numerical(s, lower=0, upper=100)
    assert list(norm.values.index) == [10, 20, 30, 40]
    masks = np.stack([norm.null, norm.unreadable, norm.outside])
    assert (masks.sum(axis=0) <= 1).all()
    assert norm.bad.tolist() == [False, True, False, True]


def test_bool_dtype_and_undeclared_domains():
    norm = values.boolean(pd.Series([True, False]))
    assert norm.values.tolist() == [True, False] and not norm.bad.any()
    assert not values.categorical(_series(["anything"])).bad.any()  # categories=None
    assert not values.numerical(_series([1e300])).bad.any()  # no bounds given
    with pytest.raises(TypeError):
        values.normalise(_series([1]), object())


def test_aware_date_bounds_are_read_as_utc():
    norm = values.datetime(
        _series(["2020-01-01T00:30:00"]), lower="2020-01-01T01:00:00+01:00", upper="2021-01-01"
    )
    assert not norm.outside[0]


def test_the_boolean_spellings_are_defined_once():
    """No other module of the tree spells the accepted booleans out."""
    spelled = re.compile(r"""\{\s*["']true["']\s*,\s*["']1["']|["']yes["'],\s*["']t["']""")
    holders = {
        str(p.relative_to(ROOT))
        for folder in ("synthrelease", "validators", "generators", "flows")
        for p in (ROOT / folder).rglob("*.py")
        if spelled.search(p.read_text(encoding="utf-8"))
    }
    assert holders == {"synthrelease/values.py"}


# ---------------------------------------------------------------------------- copy keys
def _rows(name: str) -> pd.DataFrame:
    """One row per corpus entry of column ``name``, the other columns at BASE."""
    raw = [v for v, _ in CORPUS[name]]
    frame = pd.DataFrame({c: _series([BASE[c]] * len(raw)) for c in BASE})
    frame[name] = _series(raw)
    frame.insert(0, "id", 1.5)
    return frame


@pytest.mark.parametrize("name", list(CORPUS))
def test_rows_are_the_same_exactly_when_their_values_read_the_same(name):
    keys = values.row_keys(_rows(name), COLUMNS)
    labels = [repr(label) for _, label in CORPUS[name]]
    for i in range(len(labels)):
        for j in range(len(labels)):
            same = labels[i] == labels[j]
            assert (keys[i] == keys[j]) == same, (name, CORPUS[name][i][0], CORPUS[name][j][0])


def test_keys_ignore_the_index_and_columns_outside_the_spec():
    frame = _rows("b")
    shuffled = frame.assign(extra=range(len(frame))).set_axis(range(100, 100 + len(frame)))
    assert (values.row_keys(shuffled, COLUMNS) == values.row_keys(frame, COLUMNS)).all()


def test_unreadable_text_with_nul_characters_stays_apart():
    frame = _rows("b").iloc[:3].copy()
    frame["b"] = _series(["a\x00b", "a\x00c", "a\\0b"])
    frame["c"] = _series(["a\x00b", "a\x00c", "a\\0b"])
    assert len(set(values.row_keys(frame, COLUMNS))) == 3


# ------------------------------------------------------------- gate and firewall agree
def _targets() -> list[tuple[str, object, dict[str, object]]]:
    """(column, class, real row): one real row per class of each column's corpus, each
    with a distinctive id, so that a copy of any of them fails the row scan."""
    out: list[tuple[str, object, dict[str, object]]] = []
    seen: set[tuple[str, str]] = set()
    for name, corpus in CORPUS.items():
        for value, label in corpus:
            if (name, repr(label)) not in seen:
                seen.add((name, repr(label)))
                out.append((name, label, {"id": len(out) + 0.25, **BASE, name: value}))
    return out


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame({c: _series([r[c] for r in rows]) for c in ["id", *BASE]})


def _refused(path: Path, train: SensitiveTable, holdout: SensitiveTable) -> bool:
    try:
        scan_tables({"t.parquet": path}, train=train, holdout=holdout, columns=COLUMNS)
    except FirewallError:
        return True
    return False


def test_the_gate_and_the_firewall_agree_on_every_row_of_the_corpus(tmp_path):
    """Every corpus value, written into the real row of its own class and into the real
    row of another class: the gate's copy check (on the frame and on the published
    bytes) and the firewall's row scan judge the same rows identical to a real row, and
    exactly those whose values read alike."""
    targets = _targets()
    real = _frame([row for _, _, row in targets])
    spare = _frame([{"id": 999.5, **BASE}])  # the holdout: matches no candidate
    train, holdout = SensitiveTable(real, label="train"), SensitiveTable(spare, label="holdout")
    real_keys = row_hashes(pd.concat([real, spare], ignore_index=True), COLUMNS)
    cases = []
    for name, corpus in CORPUS.items():
        own = [(label, row) for n, label, row in targets if n == name]
        for value, label in corpus:
            i = next(
                k for k, (target_label, _) in enumerate(own) if repr(target_label) == repr(label)
            )
            for target_label, target in (own[i], own[(i + 1) % len(own)]):
                cases.append(
                    (name, value, {**target, name: value}, repr(label) == repr(target_label))
                )
    gate = np.isin(row_hashes(_frame([row for _, _, row, _ in cases]), COLUMNS), real_keys)
    path = tmp_path / "t.parquet"
    for (name, value, row, expected), judged in zip(cases, gate):
        _frame([row]).to_parquet(path, index=False)
        published = bool(np.isin(row_hashes(pd.read_parquet(path), COLUMNS), real_keys)[0])
        firewall = _refused(path, train, holdout)
        assert (bool(judged), published, firewall) == (expected,) * 3, (name, value, expected)
    assert len(cases) > 150 and 0 < sum(c[3] for c in cases) < len(cases)
