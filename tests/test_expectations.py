"""The GX suite built from the schema: passes clean synthetic data, catches each breach."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.validators import expectations as ex
from synthrelease.validators.expectations import (
    ExpectationResult,
    plan_expectations,
    run_expectations,
)

COLUMNS = {
    "age": NumericalColumn(type="numerical", lower=17, upper=90, integer=True),
    "income": NumericalColumn(type="numerical", lower=0, upper=1e6, nullable=True),
    "job": CategoricalColumn(type="categorical", categories=["a", "b", "c"], other="other"),
    "smoker": BooleanColumn(type="boolean"),
    "seen": DatetimeColumn(
        type="datetime", lower=dt.datetime(2020, 1, 1), upper=dt.datetime(2021, 1, 1)
    ),
}


@pytest.fixture
def clean() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 200
    income = rng.uniform(0, 1e6, size=n)
    income[::10] = np.nan
    start = pd.Timestamp("2020-01-01").value
    span = pd.Timestamp("2021-01-01").value - start
    return pd.DataFrame(
        {
            "age": pd.array(rng.integers(17, 91, size=n), dtype="Int64"),
            "income": income,
            "job": rng.choice(["a", "b", "c", "other"], size=n),
            "smoker": pd.array(rng.random(n) < 0.3, dtype="boolean"),
            "seen": pd.to_datetime(start + (rng.random(n) * span).astype(np.int64)),
        }
    )


def _failed(result: ExpectationResult) -> set[tuple[str, str | None]]:
    assert result.success is False
    return {(o.expectation, o.column) for o in result.failed}


def test_clean_synthetic_data_passes(clean: pd.DataFrame) -> None:
    result = run_expectations(clean, COLUMNS)
    assert result.success is True, result.failed
    assert result.error is None
    assert len(result.results) == len(plan_expectations(COLUMNS))
    # Only types, columns and booleans come out.
    for outcome in result.results:
        assert isinstance(outcome.expectation, str) and isinstance(outcome.success, bool)


def test_float_integral_values_pass_integer_check(clean: pd.DataFrame) -> None:
    frame = clean.assign(age=clean["age"].astype(float))
    assert run_expectations(frame, COLUMNS).success is True


def test_out_of_bounds_value_fails(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[5, "age"] = 120
    failed = _failed(run_expectations(frame, COLUMNS))
    assert failed == {("expect_column_values_to_be_between", "age")}


def test_datetime_out_of_bounds_fails(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[0, "seen"] = pd.Timestamp("2030-01-01")
    failed = _failed(run_expectations(frame, COLUMNS))
    assert failed == {("expect_column_values_to_be_between", "seen")}


def test_unknown_category_fails(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[3, "job"] = "Atlantis"
    failed = _failed(run_expectations(frame, COLUMNS))
    assert failed == {("expect_column_values_to_be_in_set", "job")}


def test_non_boolean_fails(clean: pd.DataFrame) -> None:
    frame = clean.assign(smoker=clean["smoker"].astype(object))
    frame.loc[1, "smoker"] = "maybe"
    failed = _failed(run_expectations(frame, COLUMNS))
    assert ("expect_column_values_to_be_in_set", "smoker") in failed


def test_null_in_non_nullable_column_fails(clean: pd.DataFrame) -> None:
    frame = clean.copy()
    frame.loc[7, "age"] = pd.NA
    failed = _failed(run_expectations(frame, COLUMNS))
    assert failed == {("expect_column_values_to_not_be_null", "age")}


def test_null_in_nullable_column_passes(clean: pd.DataFrame) -> None:
    assert clean["income"].isna().any()
    assert run_expectations(clean, COLUMNS).success is True


def test_missing_column_fails(clean: pd.DataFrame) -> None:
    failed = _failed(run_expectations(clean.drop(columns="job"), COLUMNS))
    assert ("expect_table_columns_to_match_set", None) in failed
    assert ("expect_column_values_to_be_in_set", "job") in failed  # raised inside GX


def test_extra_column_fails(clean: pd.DataFrame) -> None:
    failed = _failed(run_expectations(clean.assign(extra=1), COLUMNS))
    assert failed == {("expect_table_columns_to_match_set", None)}


def test_non_integer_in_integer_column_fails(clean: pd.DataFrame) -> None:
    frame = clean.assign(age=clean["age"].astype(float))
    frame.loc[2, "age"] = 40.5
    failed = _failed(run_expectations(frame, COLUMNS))
    assert failed == {("expect_column_values_to_match_regex", "age")}


def test_row_count_is_checked(clean: pd.DataFrame) -> None:
    assert run_expectations(clean, COLUMNS, expected_rows=len(clean)).success is True
    failed = _failed(run_expectations(clean, COLUMNS, expected_rows=len(clean) + 1))
    assert failed == {("expect_table_row_count_to_equal", None)}
    empty = _failed(run_expectations(clean.iloc[:0], COLUMNS))
    assert ("expect_table_row_count_to_be_between", None) in empty


def test_exception_inside_gx_fails_closed(
    clean: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(frame: pd.DataFrame, plan: object) -> ExpectationResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(ex, "_run", boom)
    result = run_expectations(clean, COLUMNS)
    assert result.success is False
    assert result.error == "RuntimeError"
    assert result.results == ()


def test_not_a_dataframe_fails_closed() -> None:
    result = run_expectations([[1, 2]], COLUMNS)  # type: ignore[arg-type]
    assert result.success is False and result.error == "TypeError"


def test_decoded_output_of_the_discretiser_passes() -> None:
    """What generators emit (Discretiser.decode of any codes) satisfies the suite."""
    from synthrelease.generators.domain import Discretiser

    columns = {
        **COLUMNS,
        "city": CategoricalColumn(
            type="categorical", categories=["x", "y"], other="z", nullable=True
        ),
        "flag": BooleanColumn(type="boolean", nullable=True),
        "small": NumericalColumn(type="numerical", lower=-3, upper=4, integer=True),
        "when": DatetimeColumn(
            type="datetime",
            lower=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            upper=dt.datetime(2000, 1, 2, tzinfo=dt.UTC),
            nullable=True,
        ),
    }
    disc = Discretiser(columns, default_bins=8)
    rng = np.random.default_rng(11)
    codes = pd.DataFrame({n: rng.integers(0, k, size=300) for n, k in disc.sizes.items()})
    synthetic = disc.decode(codes, rng)
    result = run_expectations(synthetic, columns, expected_rows=300)
    assert result.success is True, result.failed
