"""Reading sources: clear errors that name the input, never a value."""

from __future__ import annotations

import sqlite3

import pytest

from synthrelease.errors import SchemaMismatchError, SourceError
from synthrelease.generators.domain import Discretiser
from synthrelease.private.sources import check_columns, check_domain, load_table
from synthrelease.spec import CsvSource, SqlSource, load_spec
from tests.conftest import make_table


def test_missing_unreadable_and_non_utf8(tmp_path, spec_factory):
    spec = load_spec(spec_factory())
    with pytest.raises(SourceError, match="file not found"):
        check_columns(CsvSource(kind="csv", path=tmp_path / "nope.csv"), spec.columns)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("age,score,colour,city,smoker\n1,0.5,r\xe9d,a,true\n".encode("latin-1"))
    with pytest.raises(SourceError, match="utf-8"):
        load_table(CsvSource(kind="csv", path=latin), spec.columns, label="x")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="empty"):
        check_columns(CsvSource(kind="csv", path=empty), spec.columns)


def test_column_mismatch_names_both_sides(tmp_path, spec_factory):
    spec = load_spec(spec_factory())
    df = make_table(50).drop(columns=["city"]).assign(extra=1)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SchemaMismatchError) as info:
        check_columns(CsvSource(kind="csv", path=path), spec.columns)
    assert "['city']" in str(info.value) and "['extra']" in str(info.value)


def test_duplicate_column_names(tmp_path, spec_factory):
    spec = load_spec(spec_factory())
    path = tmp_path / "dup.csv"
    path.write_text("age,age,score,colour,city,smoker\n1,1,0,red,a,true\n")
    with pytest.raises(SchemaMismatchError, match="duplicate column names \\['age'\\]"):
        check_columns(CsvSource(kind="csv", path=path), spec.columns)


@pytest.mark.parametrize(
    "column, value, expected",
    [
        ("age", 123456, "outside the declared bounds"),
        ("colour", "Atlantis-Secret", "outside the declared category set"),
        ("score", "not-a-number-SECRET", "not numbers"),
        ("smoker", "maybe-SECRET", "not booleans"),
        ("colour", None, "nullable: false"),
    ],
)
def test_domain_violations_name_the_column_not_the_value(
    tmp_path, spec_factory, column, value, expected
):
    spec = load_spec(spec_factory())
    df = make_table(50).astype(object)
    df.loc[7, column] = value
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table = load_table(CsvSource(kind="csv", path=path), spec.columns, label="t")
    with pytest.raises(SchemaMismatchError) as info:
        check_domain(table, Discretiser(spec.columns))
    message = str(info.value)
    assert expected in message and repr(column) in message
    assert "SECRET" not in message and "123456" not in message


def test_enforce_domain_handles_every_violation_row_by_row_and_never_raises(tmp_path, spec_factory):
    from synthrelease.private.sources import enforce_domain

    spec = load_spec(spec_factory())
    df = make_table(50).astype(object)
    df["city"] = df["city"].where(df["city"] != "d", "a")  # no bucketed value but ours
    df.loc[1, "age"] = "not-a-number-SECRET"  # cannot be clipped: row dropped
    df.loc[2, "age"] = 123456  # clipped to 100
    df.loc[3, "score"] = float("inf")  # clipped to 5
    df.loc[4, "colour"] = "Atlantis-Secret"  # no 'other' bucket: row dropped
    df.loc[5, "city"] = "Atlantis-Secret"  # 'other' bucket: mapped to it
    df.loc[6, "smoker"] = "maybe-SECRET"  # not a boolean: row dropped
    df.loc[7, "colour"] = None  # null in a non-nullable column: row dropped
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table = load_table(CsvSource(kind="csv", path=path), spec.columns, label="t")
    enforced, counts = enforce_domain(table, spec.columns)
    assert counts == {
        "age": {"clipped": 1, "dropped": 1},
        "score": {"clipped": 1, "dropped": 0},
        "colour": {"clipped": 0, "dropped": 2},
        "city": {"clipped": 0, "dropped": 0, "other": 1},
        "smoker": {"clipped": 0, "dropped": 1},
    }
    frame = enforced.reveal()
    assert frame.shape[0] == 46
    assert "SECRET" not in " ".join(frame.astype(str).to_numpy().ravel())
    assert frame["age"].max() == 100 and frame["score"].max() == 5.0
    assert (frame["city"] == "other").sum() == 1
    check_domain(enforced, Discretiser(spec.columns))  # every remaining row encodes
    frame.to_parquet(tmp_path / "ok.parquet")  # types stay storable


def test_unknown_category_goes_to_declared_other_bucket(tmp_path, spec_factory):
    spec = load_spec(spec_factory())
    df = make_table(200)
    assert (df["city"] == "d").any()  # 'd' is not declared; city has other: other
    codes = Discretiser(spec.columns).encode(df)
    assert codes["city"].max() <= Discretiser(spec.columns).sizes["city"] - 1


def test_sql_source_through_sqlalchemy(tmp_path, spec_factory, monkeypatch):
    spec = load_spec(spec_factory())
    db = tmp_path / "src.db"
    df = make_table(100)
    with sqlite3.connect(db) as conn:
        df.to_sql("people", conn, index=False)
    monkeypatch.setenv("SRC_URL", f"sqlite:///{db}")
    source = SqlSource(kind="sql", url_env="SRC_URL", table="people")
    check_columns(source, spec.columns)
    table = load_table(source, spec.columns, label="people")
    check_domain(table, Discretiser(spec.columns))
    assert table.reveal().shape == (100, 5)
    query = SqlSource(kind="sql", url_env="SRC_URL", query="SELECT * FROM people WHERE age > 50")
    assert (load_table(query, spec.columns, label="q").reveal()["age"] > 50).all()


def test_sql_errors_do_not_leak_the_url(monkeypatch, spec_factory):
    spec = load_spec(spec_factory())
    source = SqlSource(kind="sql", url_env="SRC_URL", table="people")
    monkeypatch.delenv("SRC_URL", raising=False)
    with pytest.raises(SourceError, match="SRC_URL is not set"):
        check_columns(source, spec.columns)
    monkeypatch.setenv("SRC_URL", "postgresql+nosuchdriver://user:hunter2@127.0.0.1:1/db")
    with pytest.raises(SourceError) as info:
        check_columns(source, spec.columns)
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv("SRC_URL", "sqlite:////nonexistent/dir/x.db")
    with pytest.raises(SourceError, match="query failed"):
        check_columns(source, spec.columns)


def test_enforcement_reads_values_as_synthrelease_values_does():
    """The domain rules use the shared normaliser: mixed-case / spaced boolean spellings
    stay, unreadable ones drop their row; dates with mixed UTC offsets are read (as UTC)."""
    import pandas as pd

    from synthrelease.private.sources import enforce_domain
    from synthrelease.private.table import SensitiveTable
    from synthrelease.spec import BooleanColumn, DatetimeColumn, NumericalColumn

    columns = {
        "b": BooleanColumn(type="boolean"),
        "d": DatetimeColumn(type="datetime", lower="2000-01-01", upper="2030-01-01"),
        "n": NumericalColumn(type="numerical", lower=0, upper=10, integer=True),
    }
    frame = pd.DataFrame(
        {
            "b": [" YES ", "0.0", "maybe", "F"],
            "d": ["2020-01-02T00:00:00+01:00", "2020-01-02", "1990-01-01", "2040-01-01"],
            "n": [" 3 ", "3.0", "4", "inf"],
        }
    )
    enforced, counts = enforce_domain(SensitiveTable(frame, label="t"), columns)
    out = enforced.reveal()
    assert out["b"].tolist() == [" YES ", "0.0", "F"]  # values kept, only the row dropped
    assert counts["b"] == {"clipped": 0, "dropped": 1}
    assert out["d"].tolist() == ["2020-01-02T00:00:00+01:00", "2020-01-02", "2030-01-01T00:00:00"]
    assert counts["d"] == {"clipped": 2, "dropped": 0}  # clipped 2, one of them dropped by b
    assert out["n"].tolist() == [3.0, 3.0, 10.0]


def test_an_integer_column_stays_integer_when_clipped():
    import pandas as pd

    from synthrelease.private.sources import enforce_domain
    from synthrelease.private.table import SensitiveTable
    from synthrelease.spec import NumericalColumn

    frame = pd.DataFrame({"n": [1, 200, 3]})
    enforced, counts = enforce_domain(
        SensitiveTable(frame, label="t"),
        {"n": NumericalColumn(type="numerical", lower=0, upper=100, integer=True)},
    )
    assert enforced.reveal()["n"].dtype == frame["n"].dtype
    assert enforced.reveal()["n"].tolist() == [1, 100, 3] and counts["n"]["clipped"] == 1
