"""Marginal TVD on integer codes: exact values on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthrelease.validators import utility
from synthrelease.validators.utility import marginal_tvd

SIZES = {"a": 3, "b": 2, "c": 4}


def _random_codes(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame({k: rng.integers(0, n, size=rows) for k, n in SIZES.items()})


@pytest.mark.parametrize("way", [1, 2, 3])
def test_identical_frames_have_zero_tvd(way: int) -> None:
    codes = _random_codes(np.random.default_rng(0), 500)
    assert marginal_tvd(codes, codes.copy(), SIZES, way=way) == 0.0
    # Same distribution, different order and size (each row twice): still 0.
    doubled = pd.concat([codes, codes]).sample(frac=1.0, random_state=1)
    assert marginal_tvd(codes, doubled, SIZES, way=way) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("way", [1, 2, 3])
def test_disjoint_supports_have_tvd_one(way: int) -> None:
    a = pd.DataFrame({"a": [0, 0, 1], "b": [0, 0, 0], "c": [0, 1, 2]})
    b = pd.DataFrame({"a": [2, 2], "b": [1, 1], "c": [3, 3]})
    assert marginal_tvd(a, b, SIZES, way=way) == pytest.approx(1.0)


def test_hand_computed_one_and_two_way() -> None:
    sizes = {"x": 2, "y": 2}
    a = pd.DataFrame({"x": [0, 0, 1, 1], "y": [0, 1, 0, 1]})
    b = pd.DataFrame({"x": [0, 0, 0, 1], "y": [0, 0, 1, 1]})
    # x: a=(.5,.5) b=(.75,.25) -> .25 ; y: a=(.5,.5) b=(.5,.5) -> 0 ; mean .125
    assert marginal_tvd(a, b, sizes, way=1) == pytest.approx(0.125)
    # (x,y): a=(.25,.25,.25,.25) b=(.5,.25,0,.25) -> .5*(.25+0+.25+0) = .25
    assert marginal_tvd(a, b, sizes, way=2) == pytest.approx(0.25)


def test_workload_restricts_marginals() -> None:
    sizes = {"x": 2, "y": 2, "z": 3}
    a = pd.DataFrame({"x": [0, 0, 1, 1], "y": [0, 1, 0, 1], "z": [0, 0, 0, 0]})
    b = pd.DataFrame({"x": [0, 0, 0, 1], "y": [0, 0, 1, 1], "z": [2, 2, 2, 2]})
    assert marginal_tvd(a, b, sizes, way=1, workload=[("x",)]) == pytest.approx(0.25)
    assert marginal_tvd(a, b, sizes, way=1) == pytest.approx((0.25 + 0 + 1) / 3)
    with pytest.raises(ValueError):
        marginal_tvd(a, b, sizes, way=2, workload=[("x",)])
    with pytest.raises(ValueError):
        marginal_tvd(a, b, sizes, way=2, workload=[("x", "nope")])


def test_sparse_path_matches_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    a, b = _random_codes(rng, 300), _random_codes(rng, 200)
    dense = [marginal_tvd(a, b, SIZES, way=w) for w in (1, 2, 3)]
    monkeypatch.setattr(utility, "DENSE_CELL_LIMIT", 1)
    sparse = [marginal_tvd(a, b, SIZES, way=w) for w in (1, 2, 3)]
    assert sparse == pytest.approx(dense)
    assert all(0 < v < 1 for v in dense)


def test_rejects_bad_codes_without_quoting_values() -> None:
    good = pd.DataFrame({"x": [0, 1]})
    with pytest.raises(ValueError, match="outside its domain") as info:
        marginal_tvd(good, pd.DataFrame({"x": [0, 987654]}), {"x": 2}, way=1)
    assert "987654" not in str(info.value)
    with pytest.raises(ValueError, match="no rows"):
        marginal_tvd(good, good.iloc[:0], {"x": 2}, way=1)
    with pytest.raises(ValueError, match="missing columns"):
        marginal_tvd(good, pd.DataFrame({"y": [0]}), {"x": 2}, way=1)
    with pytest.raises(ValueError, match="not integer codes"):
        marginal_tvd(good, pd.DataFrame({"x": [0.5]}), {"x": 2}, way=1)
    with pytest.raises(ValueError, match="way"):
        marginal_tvd(good, good, {"x": 2}, way=2)
