"""Figures against real rows: TVD vs holdout and the exact-copy excess."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn
from synthrelease.validators.real import FIGURE_NAMES, real_data_figures

WIDE = {
    "x": NumericalColumn(type="numerical", lower=0, upper=1),
    "k": NumericalColumn(type="numerical", lower=0, upper=50, integer=True),
    "c": CategoricalColumn(type="categorical", categories=["a", "b"], other="other"),
    "b": BooleanColumn(type="boolean", nullable=True),
    "d": DatetimeColumn(
        type="datetime", lower=dt.datetime(2020, 1, 1), upper=dt.datetime(2021, 1, 1)
    ),
}
NARROW = {  # 2 x 3 x 2 = 12 cells: independent samples collide all the time
    "sex": CategoricalColumn(type="categorical", categories=["f", "m"]),
    "grade": CategoricalColumn(type="categorical", categories=["lo", "mid", "hi"]),
    "flag": BooleanColumn(type="boolean"),
}


def _wide(rng: np.random.Generator, n: int) -> pd.DataFrame:
    start = pd.Timestamp("2020-01-01").value
    span = pd.Timestamp("2021-01-01").value - start
    b = pd.array(rng.random(n) < 0.5, dtype="boolean")
    b[rng.random(n) < 0.1] = pd.NA
    return pd.DataFrame(
        {
            "x": rng.random(n),
            "k": rng.integers(0, 51, size=n),
            "c": rng.choice(["a", "b", "Atlantis"], size=n),  # raw value outside categories
            "b": b,
            "d": pd.to_datetime(start + (rng.random(n) * span).astype(np.int64)),
        }
    )


def _narrow(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": rng.choice(["f", "m"], size=n, p=[0.6, 0.4]),
            "grade": rng.choice(["lo", "mid", "hi"], size=n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.3,
        }
    )


def _figures(columns, train, holdout, synthetic, seed=0, **kw) -> dict[str, float]:
    return real_data_figures(
        train=SensitiveTable(train, label="train"),
        holdout=SensitiveTable(holdout, label="holdout"),
        synthetic=synthetic,
        discretiser=Discretiser(columns),
        rng=np.random.default_rng(seed),
        **kw,
    )


def test_copy_of_training_rows_has_large_excess() -> None:
    rng = np.random.default_rng(1)
    train, holdout = _wide(rng, 800), _wide(rng, 200)
    # What a memorising generator would emit: the training rows, decoded dtypes
    # (Int64, the 'other' label, object booleans, tz-aware datetimes), shuffled.
    copy = train.sample(frac=1.0, random_state=2).reset_index(drop=True)
    copy["k"] = copy["k"].astype("Int64")
    copy["c"] = copy["c"].where(copy["c"].isin(["a", "b"]), "other")
    copy["b"] = copy["b"].astype(object)
    copy["d"] = copy["d"].dt.tz_localize("UTC")
    figures = _figures(WIDE, train, holdout, copy)
    assert set(figures) == set(FIGURE_NAMES)
    assert figures["exact_copy_share"] == pytest.approx(1.0)
    assert figures["exact_copy_holdout_share"] == pytest.approx(0.0)
    # The same-size training reference holds 200 of 800 rows: a quarter of the copies.
    assert 0.15 < figures["exact_copy_excess"] < 0.35


def test_independent_sample_of_low_cardinality_table_has_no_excess() -> None:
    zones = [f"z{i}" for i in range(40)]
    columns = {**NARROW, "zone": CategoricalColumn(type="categorical", categories=zones)}

    def draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
        return _narrow(rng, n).assign(zone=rng.choice(zones, size=n))

    rng = np.random.default_rng(2)
    train, holdout, synthetic = draw(rng, 2000), draw(rng, 300), draw(rng, 1000)
    figures = _figures(columns, train, holdout, synthetic)
    # 480 cells: most synthetic rows "copy" some training row by chance, and the naive
    # share is far above the holdout share only because the training part is larger...
    assert figures["exact_copy_share"] > 0.9
    assert 0.3 < figures["exact_copy_holdout_share"] < 0.8
    # ...while the same-size comparison shows no excess (noise sd ~0.02 at this size).
    assert abs(figures["exact_copy_excess"]) < 0.06


def test_saturated_domain_has_no_excess() -> None:
    rng = np.random.default_rng(12)
    train, holdout, synthetic = _narrow(rng, 4000), _narrow(rng, 1000), _narrow(rng, 2000)
    figures = _figures(NARROW, train, holdout, synthetic)
    assert figures["exact_copy_holdout_share"] == pytest.approx(1.0)
    assert figures["exact_copy_excess"] == pytest.approx(0.0)
    assert figures["tvd_1way"] < 0.05 and figures["tvd_2way"] < 0.05


def test_tvd_against_holdout() -> None:
    rng = np.random.default_rng(3)
    train, holdout = _narrow(rng, 500), _narrow(rng, 500)
    same = _figures(NARROW, train, holdout, holdout.copy())
    assert same["tvd_1way"] == pytest.approx(0.0) and same["tvd_2way"] == pytest.approx(0.0)
    skewed = holdout.assign(sex="m", grade="hi")
    far = _figures(NARROW, train, holdout, skewed)
    assert far["tvd_1way"] > 0.3 and far["tvd_2way"] > far["tvd_1way"] * 0.9


def test_synthetic_outside_the_domain_gives_nan_tvd() -> None:
    rng = np.random.default_rng(4)
    train, holdout = _wide(rng, 100), _wide(rng, 100)
    synthetic = _wide(rng, 100)
    synthetic.loc[0, "x"] = 5.0
    figures = _figures(WIDE, train, holdout, synthetic)
    assert math.isnan(figures["tvd_1way"]) and math.isnan(figures["tvd_2way"])
    assert math.isfinite(figures["exact_copy_excess"])


def test_subsampling_is_bounded_and_seeded() -> None:
    rng = np.random.default_rng(5)
    train, holdout, synthetic = _narrow(rng, 3000), _narrow(rng, 3000), _narrow(rng, 3000)
    a = _figures(NARROW, train, holdout, synthetic, seed=9, max_rows=200, max_reference_rows=300)
    b = _figures(NARROW, train, holdout, synthetic, seed=9, max_rows=200, max_reference_rows=300)
    assert a == b
    assert all(math.isfinite(v) for v in a.values())


def test_missing_declared_column_raises_without_values() -> None:
    rng = np.random.default_rng(6)
    train = _narrow(rng, 50)
    with pytest.raises(Exception, match="flag"):
        _figures(NARROW, train, train, train.drop(columns="flag"))


def test_requires_sensitive_tables() -> None:
    frame = _narrow(np.random.default_rng(7), 10)
    with pytest.raises(TypeError):
        real_data_figures(
            train=frame,  # type: ignore[arg-type]
            holdout=SensitiveTable(frame, label="h"),
            synthetic=frame,
            discretiser=Discretiser(NARROW),
            rng=np.random.default_rng(0),
        )
