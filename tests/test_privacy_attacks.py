"""Privacy attacks: each one flags a copying generator (power) and stays quiet for a
generator that does not see the training rows (size), at the spec's default thresholds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthrelease.spec import BooleanColumn, CategoricalColumn, Gate, NumericalColumn
from synthrelease.validators.distance import distance_figures
from synthrelease.validators.encoding import NULL_NUMERIC, encode_mixed
from synthrelease.validators.inference import inference_risk
from synthrelease.validators.linkability import default_aux, linkability_risk
from synthrelease.validators.membership import membership_attack, roc_auc
from synthrelease.validators.neighbours import nearest, nearest_leaving_out_each
from synthrelease.validators.risk import residual_risk, success_rate
from synthrelease.validators.singling_out import singling_out_risk

COLUMNS = {
    "x": NumericalColumn(type="numerical", lower=0, upper=1),
    "y": NumericalColumn(type="numerical", lower=-5, upper=5, nullable=True),
    "k": NumericalColumn(type="numerical", lower=0, upper=1000, integer=True),
    "c": CategoricalColumn(type="categorical", categories=[f"c{i}" for i in range(8)]),
    "d": CategoricalColumn(
        type="categorical", categories=["p", "q", "r"], other="o", nullable=True
    ),
    "b": BooleanColumn(type="boolean"),
}
GATE = Gate()
N = 500


def population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Draws from one fixed distribution with some dependence between columns."""
    c = rng.integers(0, 8, size=n)
    x = np.clip(rng.beta(2, 5, size=n) + 0.05 * c, 0, 1)
    y = np.clip(rng.normal(c - 3.5, 1.0, size=n), -5, 5)
    y[rng.random(n) < 0.05] = np.nan
    d = rng.choice(["p", "q", "r", "s", None], size=n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "k": rng.integers(0, 1001, size=n),
            "c": [f"c{i}" for i in c],
            "d": d,
            "b": rng.random(n) < 0.3 + 0.05 * c,
        }
    )


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(2024)
    train, holdout = population(rng, N), population(rng, N)
    copy = train.sample(frac=1.0, random_state=1).reset_index(drop=True)  # a memoriser
    fresh = population(rng, N)  # a generator that learnt the distribution only
    enc = {
        name: encode_mixed(df, COLUMNS)
        for name, df in (("train", train), ("holdout", holdout), ("copy", copy), ("fresh", fresh))
    }
    return enc


def _attack(name: str, enc: dict, synthetic: str) -> dict[str, float]:
    rng = np.random.default_rng(7)
    s, t, h = enc[synthetic], enc["train"], enc["holdout"]
    half = h.rows // 2
    if name == "distance":
        return distance_figures(synthetic=s, train=t, holdout=h, rng=rng)[0]
    if name == "membership":
        return membership_attack(
            members=t.take(np.arange(half)),
            non_members=h.take(np.arange(half)),
            reference=h.take(np.arange(half, h.rows)),
            synthetic=s,
            rng=rng,
        )[0]
    if name == "singling_out":
        return singling_out_risk(synthetic=s, train=t, control=h, rng=rng, queries=200)[0]
    if name == "linkability":
        return linkability_risk(synthetic=s, targets=t, controls=h, rng=rng)[0]
    return inference_risk(synthetic=s, targets=t, controls=h, rng=rng)[0]


# (attack, figure gated, Gate attribute)
GATED = [
    ("distance", "dcr_train_share", "max_dcr_train_share"),
    ("distance", "nndr_train_share", "max_nndr_train_share"),
    ("distance", "near_copy_excess", "max_near_copy_excess"),
    ("membership", "mia_auc", "max_mia_auc"),
    ("singling_out", "singling_out_risk", "max_singling_out_risk"),
    ("linkability", "linkability_risk", "max_linkability_risk"),
    ("inference", "inference_risk", "max_inference_risk"),
]


@pytest.mark.parametrize("attack,figure,threshold", GATED)
def test_power_each_attack_flags_a_copy_of_the_training_rows(tables, attack, figure, threshold):
    value = _attack(attack, tables, "copy")[figure]
    assert value > getattr(GATE, threshold), (figure, value)


@pytest.mark.parametrize("attack,figure,threshold", GATED)
def test_size_no_attack_flags_a_generator_that_never_saw_the_rows(
    tables, attack, figure, threshold
):
    value = _attack(attack, tables, "fresh")[figure]
    assert math.isfinite(value) and value <= getattr(GATE, threshold), (figure, value)


def test_near_copies_are_caught_where_exact_copies_are_not(tables):
    rng = np.random.default_rng(3)
    t = tables["train"]
    jittered = t.values.copy()
    numeric = ~t.categorical
    jittered[:, numeric] = np.where(
        jittered[:, numeric] == NULL_NUMERIC,
        NULL_NUMERIC,
        np.clip(jittered[:, numeric] + rng.normal(0, 0.002, size=(t.rows, numeric.sum())), 0, 1),
    )
    near = type(t)(jittered, t.categorical, t.names)
    figures, _ = distance_figures(synthetic=near, train=t, holdout=tables["holdout"], rng=rng)
    assert figures["near_copy_excess"] > 0.5 and figures["dcr_train_share"] > 0.9


def test_copy_figures_are_extreme_and_intervals_bracket_the_estimate(tables):
    mia = _attack("membership", tables, "copy")
    assert mia["mia_auc"] > 0.95 and mia["mia_auc_low"] <= mia["mia_auc"] <= mia["mia_auc_high"]
    dist = _attack("distance", tables, "copy")
    assert dist["dcr_train_share"] > 0.95 and dist["near_copy_share"] == pytest.approx(1.0)
    for attack in ("singling_out", "linkability", "inference"):
        f = _attack(attack, tables, "copy")
        assert f[f"{attack}_risk_low"] <= f[f"{attack}_risk"] <= f[f"{attack}_risk_high"]


# ------------------------------------------------------------------------ building blocks
def test_encoding_scales_by_declared_bounds_and_codes_nulls():
    frame = pd.DataFrame(
        {
            "x": [0.0, 0.5, None],
            "y": [-5.0, 5.0, None],
            "k": [0, 1000, 500],
            "c": ["c0", "c7", "c1"],
            "d": ["p", "Atlantis", None],
            "b": [True, False, None],
        }
    )
    m = encode_mixed(frame, COLUMNS)
    assert m.values[:, 0].tolist() == [0.0, 0.5, NULL_NUMERIC]
    assert m.values[:, 1].tolist() == [0.0, 1.0, NULL_NUMERIC]
    assert m.values[:, 4].tolist() == [0.0, 3.0, -1.0]  # unknown -> 'other' (index 3)
    assert m.values[:, 5].tolist() == [1.0, 0.0, -1.0]
    assert m.categorical.tolist() == [False, False, False, True, True, True]


def test_nearest_matches_a_brute_force_gower_distance():
    rng = np.random.default_rng(0)
    a = encode_mixed(population(rng, 40), COLUMNS)
    b = encode_mixed(population(rng, 70), COLUMNS)

    def gower(i: int, j: int, cols: list[int]) -> float:
        total = 0.0
        for c in cols:
            u, v = a.values[i, c], b.values[j, c]
            total += float(u != v) if a.categorical[c] else min(abs(u - v), 1.0)
        return total / len(cols)

    full = np.array([[gower(i, j, list(range(6))) for j in range(70)] for i in range(40)])
    dist, idx = nearest(a, b, k=3, max_cells=100)  # tiny blocks: exercises the blocking
    assert np.allclose(dist, np.sort(full, axis=1)[:, :3], atol=1e-6)
    assert np.allclose(np.take_along_axis(full, idx, axis=1), dist, atol=1e-6)
    loo = nearest_leaving_out_each(a, b)
    for j in range(6):
        cols = [c for c in range(6) if c != j]
        part = np.array([[gower(i, q, cols) for q in range(70)] for i in range(40)])
        assert np.allclose(part[np.arange(40), loo[:, j]], part.min(axis=1), atol=1e-6)


def test_wilson_rates_and_residual_risk_pinned():
    # Pinned against anonymeter 1.1.0's stats.confidence (success_rate, residual_success).
    rate = success_rate(attacks=100, successes=30)
    assert rate.value == pytest.approx(0.3073987, abs=1e-6)
    assert rate.error == pytest.approx(0.0884498, abs=1e-6)
    risk = residual_risk(attacks=100, successes=30, control_attacks=100, control_successes=10)
    assert risk.value == pytest.approx(0.2175788, abs=1e-6)
    assert (risk.low, risk.high) == pytest.approx((0.1046350, 0.3305226), abs=1e-6)
    assert (
        residual_risk(attacks=50, successes=0, control_attacks=50, control_successes=40).value
        == 0.0
    )  # clipped at zero


def test_auc_handles_ties_and_direction():
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert roc_auc(np.array([0.0]), np.array([1.0])) == 0.0


def test_default_aux_splits_the_columns_in_two():
    assert default_aux(["a", "b", "c"]) == (["a", "b"], ["c"])
    with pytest.raises(ValueError):
        default_aux(["a"])
