"""Utility checks: TSTR next to TRTR, SDMetrics (fail closed), 3-way workloads, plots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthrelease.spec import BooleanColumn, CategoricalColumn, NumericalColumn
from synthrelease.validators import svg
from synthrelease.validators.distributions import bin_labels, cramers_v
from synthrelease.validators.features import typed_frame
from synthrelease.validators.sdmetrics_reports import sdmetrics_figures
from synthrelease.validators.tstr import tstr_figures
from synthrelease.validators.utility import sampled_workload

COLUMNS = {
    "age": NumericalColumn(type="numerical", lower=0, upper=100, integer=True),
    "score": NumericalColumn(type="numerical", lower=-10, upper=10, nullable=True),
    "job": CategoricalColumn(type="categorical", categories=["a", "b", "c"], other="z"),
    "smoker": BooleanColumn(type="boolean"),
    "label": CategoricalColumn(type="categorical", categories=["no", "yes"]),
}


def draw(rng: np.random.Generator, n: int, *, signal: bool = True) -> pd.DataFrame:
    age = rng.integers(18, 90, size=n)
    score = np.clip(rng.normal(0, 3, size=n), -10, 10)
    score[rng.random(n) < 0.05] = np.nan
    job = rng.choice(["a", "b", "c", "Atlantis"], size=n, p=[0.4, 0.3, 0.25, 0.05])
    smoker = rng.random(n) < 0.3
    logit = (age - 50) / 10 + np.nan_to_num(score) / 2 + smoker if signal else np.zeros(n)
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"age": age, "score": score, "job": job, "smoker": smoker, "label": label})


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(11)
    typed = {
        k: typed_frame(draw(rng, 1500, signal=(k != "noise")), COLUMNS)
        for k in ("train", "holdout", "synthetic", "noise")
    }
    return typed


def test_typed_frame_maps_unknown_categories_to_the_declared_bucket(frames):
    job = frames["train"]["job"]
    assert set(job.unique()) <= {"a", "b", "c", "z"} and "Atlantis" not in set(job)
    assert set(frames["train"]["smoker"].unique()) <= {"True", "False"}


def test_tstr_close_to_trtr_for_a_faithful_generator(frames):
    figures, details = tstr_figures(
        synthetic=frames["synthetic"],
        train=frames["train"],
        holdout=frames["holdout"],
        specs=COLUMNS,
        target="label",
        seed=0,
        max_iter=30,
    )
    assert details["task"] == "binary" and details["primary_metric"] == "auc"
    assert figures["trtr_score"] > 0.8
    assert abs(figures["tstr_gap"]) < 0.05
    assert details["scores"]["dummy"]["auc"] == pytest.approx(0.5)


def test_tstr_flags_a_generator_that_lost_the_signal(frames):
    figures, _ = tstr_figures(
        synthetic=frames["noise"],
        train=frames["train"],
        holdout=frames["holdout"],
        specs=COLUMNS,
        target="label",
        seed=0,
        max_iter=30,
    )
    assert figures["tstr_gap"] > 0.25


def test_tstr_multiclass_and_regression_metrics(frames):
    f, d = tstr_figures(
        synthetic=frames["synthetic"],
        train=frames["train"],
        holdout=frames["holdout"],
        specs=COLUMNS,
        target="job",
        seed=0,
        max_iter=10,
    )
    assert d["primary_metric"] == "macro_f1" and "accuracy" in d["scores"]["real"]
    f, d = tstr_figures(
        synthetic=frames["synthetic"],
        train=frames["train"],
        holdout=frames["holdout"],
        specs=COLUMNS,
        target="age",
        seed=0,
        max_iter=10,
    )
    assert d["primary_metric"] == "r2" and math.isfinite(f["tstr_gap"])


def test_tstr_raises_when_the_synthetic_target_has_one_class(frames):
    one_class = frames["synthetic"].assign(label="no")
    with pytest.raises(ValueError):
        tstr_figures(
            synthetic=one_class,
            train=frames["train"],
            holdout=frames["holdout"],
            specs=COLUMNS,
            target="label",
            seed=0,
            max_iter=10,
        )


def test_sdmetrics_scores_and_fail_closed_on_a_broken_metric(frames):
    figures, details = sdmetrics_figures(
        real=frames["holdout"], synthetic=frames["synthetic"], specs=COLUMNS
    )
    assert figures["quality_score"] > 0.85 and figures["diagnostic_score"] > 0.95
    assert {r["Metric"] for r in details["quality_column_shapes"]} >= {
        "KSComplement",
        "TVComplement",
    }
    # A constant synthetic column makes SDMetrics' pair metrics error; it would average
    # them away, we report NaN so that the gate fails.
    broken = frames["synthetic"].assign(age=40.0)
    figures, details = sdmetrics_figures(real=frames["holdout"], synthetic=broken, specs=COLUMNS)
    assert math.isnan(figures["quality_column_pair_trends"])
    assert math.isnan(figures["quality_score"])
    assert any("age" in p for p in details["quality_problems"]["Column Pair Trends"])


def test_a_column_constant_in_the_real_rows_does_not_nan_the_quality_score(frames):
    """Issue 14: a constant real column (a census extract's `year`) has no pair trend to
    score; the quality score comes from the rest. A synthetic table that is constant where
    the real one is not still fails (previous test)."""
    real = frames["holdout"].assign(age=40)
    synthetic = frames["synthetic"].assign(age=40)
    figures, details = sdmetrics_figures(real=real, synthetic=synthetic, specs=COLUMNS)
    assert math.isfinite(figures["quality_column_pair_trends"])
    assert figures["quality_score"] > 0.8
    assert "quality_problems" not in details


def test_sampled_workload_is_bounded_and_seeded():
    sizes = {f"c{i}": 2 for i in range(30)}  # 4060 triples
    a = sampled_workload(sizes, way=3, max_marginals=100, rng=np.random.default_rng(1))
    b = sampled_workload(sizes, way=3, max_marginals=100, rng=np.random.default_rng(1))
    assert a == b and len(a) == len(set(a)) == 100
    assert all(len(set(m)) == 3 for m in a)
    assert (
        len(
            sampled_workload(
                {"x": 2, "y": 2, "z": 2}, way=3, max_marginals=5, rng=np.random.default_rng(0)
            )
        )
        == 1
    )


def test_bin_labels_come_from_the_declared_domain():
    assert bin_labels(COLUMNS["job"], 4, False) == ["a", "b", "c", "z"]
    assert bin_labels(COLUMNS["score"], 4, True) == ["-10–-5", "-5–0", "0–5", "5–10", "null"]
    assert bin_labels(
        NumericalColumn(type="numerical", lower=1, upper=3, integer=True), 3, False
    ) == ["1", "2", "3"]


def test_cramers_v_extremes():
    a = np.array([0, 1, 0, 1] * 50)
    assert cramers_v(a, a, 2, 2) == pytest.approx(1.0)
    assert cramers_v(a, np.array([0, 0, 1, 1] * 50), 2, 2) == pytest.approx(0.0)
    assert cramers_v(a, np.zeros(200, dtype=int), 2, 2) == 0.0


def test_svg_charts_escape_labels_and_hold_no_script_or_link():
    chart = svg.bars(
        title="<b>x</b>", labels=["<script>", "b"], real=[0.5, 0.5], synthetic=[0.2, 0.8]
    )
    heat = svg.heatmap(title="t", columns=["a&b", "c"], matrix=[[1, 0.2], [0.2, 1]])
    for text in (chart, heat):
        assert "<script" not in text and "http" not in text and text.startswith("<svg")
    assert "&lt;script&gt;" in chart and "a&amp;b" in heat
    many = svg.bars(
        title="t", labels=[str(i) for i in range(60)], real=[1 / 60] * 60, synthetic=[1 / 60] * 60
    )
    assert "20 smaller bins not shown" in many
