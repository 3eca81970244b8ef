"""Utility that people read: the k-marginal score, the sample equivalence, TSTR/TRTR
intervals, the per-column and per-pair views, the report's glance and the datasheet's
opt-in headline."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import load_spec
from synthrelease.validators import real
from synthrelease.validators.checks import sample_equivalence as se
from synthrelease.validators.datasheet import build_datasheet, datasheet_markdown
from synthrelease.validators.distributions import pair_tvds
from synthrelease.validators.evaluation import Settings
from synthrelease.validators.gate import Check, Verdict
from synthrelease.validators.report import write_internal_report
from synthrelease.validators.report_sections import equivalence_sentence
from synthrelease.validators.tstr import _weighted_metric, tstr_figures
from synthrelease.validators.utility import marginal_tvd
from tests.test_privacy_attacks import COLUMNS, population
from tests.test_utility_checks import COLUMNS as TSTR_COLUMNS
from tests.test_utility_checks import draw

NEW_FIGURES = (
    "kmarginal_score",
    "equivalent_sample_fraction",
    "equivalent_sample_rows",
    "equivalent_sample_clamp",
    "tstr_score_low",
    "tstr_score_high",
    "trtr_score_low",
    "trtr_score_high",
    "tstr_gap_low",
    "tstr_gap_high",
)


def _evaluate(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, **kw):
    return real.evaluate_against_real(
        train=SensitiveTable(train, label="t"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=synthetic,
        discretiser=Discretiser(COLUMNS, default_bins=8),
        target=None,
        rng=np.random.default_rng(3),
        **kw,
    )


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(21)
    return population(rng, 20_000), population(rng, 6_000)


@pytest.mark.parametrize("share", [0.01, 0.05, 0.3])
def test_a_random_sample_of_the_training_rows_is_equivalent_to_its_share(parts, share):
    """One synthetic table is one draw: its TVD, and so the matched share, scatter
    (about +-30% here); over a few draws the share comes out."""
    train, holdout = parts
    matched = []
    for seed in range(4):
        synthetic = train.sample(frac=share, random_state=seed).reset_index(drop=True)
        checks = ["sample_equivalence"] + (["marginals_and_copies"] if seed == 0 else [])
        ev = _evaluate(train, holdout, synthetic, only=checks)
        if seed == 0:
            first = ev
        assert ev.errors == {} and ev.figures["equivalent_sample_clamp"] == 0
        matched.append(ev.figures["equivalent_sample_fraction"])
    assert all(share / 2 < m < share * 2 for m in matched), matched
    assert share / 1.3 < math.exp(np.mean(np.log(matched))) < share * 1.3, matched
    f = first.figures
    assert f["equivalent_sample_rows"] == round(f["equivalent_sample_fraction"] * len(train))
    d = first.details["sample_equivalence"]
    # like with like: the matched TVD is tvd_2way (both tables within marginal_rows)
    assert d["synthetic_tvd"] == pytest.approx(f["tvd_2way"], abs=1e-12)
    assert max(d["sample_rows"]) == len(train) and min(d["sample_rows"]) == 20  # 0.1%
    # the breakdown: per-column and per-pair TVDs average to the 1- and 2-way figures
    assert np.mean(list(d["column_tvd"].values())) == pytest.approx(f["tvd_1way"], abs=1e-12)
    assert len(d["pair_tvd"]) == min(se.LISTED_PAIRS, math.comb(len(COLUMNS), 2))
    assert [p[2] for p in d["pair_tvd"]] == sorted((p[2] for p in d["pair_tvd"]), reverse=True)
    table = d["pair_tables"][0]
    assert table["tvd"] == d["pair_tvd"][0][2]
    assert np.asarray(table["real"]).shape == (len(table["rows"]), len(table["cols"]))


def test_marginal_rows_bounds_the_samples_not_the_share(parts):
    train, holdout = parts
    synthetic = train.sample(frac=0.05, random_state=0).reset_index(drop=True)
    settings = Settings(sample_rows=2000, marginal_rows=5000)
    ev = _evaluate(train, holdout, synthetic, settings=settings, only=["sample_equivalence"])
    d = ev.details["sample_equivalence"]
    assert max(d["sample_rows"]) == 5000 and d["training_rows"] == len(train)
    assert max(d["sample_fractions"]) == 0.25 and d["holdout_rows"] == 5000
    assert 0.025 < ev.figures["equivalent_sample_fraction"] < 0.1


def test_the_pair_tvds_are_the_two_way_tvd(parts):
    train, holdout = parts
    d = Discretiser(COLUMNS, default_bins=8)
    a, b = d.encode(train.iloc[:3000]), d.encode(holdout)
    pairs = pair_tvds(a, b, d.sizes, list(itertools.combinations(d.sizes, 2)))
    assert np.mean([p[2] for p in pairs]) == pytest.approx(
        marginal_tvd(a, b, d.sizes, way=2), abs=1e-12
    )


def test_a_copy_of_the_training_rows_is_all_of_them_and_the_holdout_is_more(parts):
    train, holdout = parts
    ev = _evaluate(train, holdout, train.copy(), only=["sample_equivalence"])
    assert ev.figures["equivalent_sample_clamp"] == 0
    assert ev.figures["equivalent_sample_fraction"] == pytest.approx(1.0)
    ev = _evaluate(train, holdout, holdout.copy(), only=["sample_equivalence"])
    assert ev.details["sample_equivalence"]["synthetic_tvd"] == 0
    assert ev.figures["equivalent_sample_clamp"] == 1
    assert ev.figures["equivalent_sample_fraction"] == 1.0
    assert "> 100%" in equivalence_sentence(ev.figures)


def test_noise_is_clamped_below_and_said_so(parts):
    train, holdout = parts
    rng = np.random.default_rng(0)
    noise = pd.DataFrame({c: rng.permutation(train[c].to_numpy())[:2000] for c in train})
    noise["c"] = "c0"  # one value only: far worse than any real sample
    noise["d"] = "s"
    ev = _evaluate(train, holdout, noise, only=["sample_equivalence"])
    assert ev.figures["equivalent_sample_clamp"] == -1
    assert ev.figures["equivalent_sample_fraction"] == pytest.approx(0.001)
    assert equivalence_sentence(ev.figures).startswith("less accurate than a random sample")


def test_match_interpolates_log_linearly_and_clamps():
    fractions = np.array([0.01, 0.1, 1.0])
    curve = np.array([0.3, 0.1, 0.05])
    assert se.match(0.2, fractions, curve) == (pytest.approx(10**-1.5), 0)
    assert se.match(0.1, fractions, curve) == (pytest.approx(0.1), 0)
    assert se.match(0.4, fractions, curve) == (0.01, -1)
    assert se.match(0.01, fractions, curve) == (1.0, 1)
    # a noisy, rising step is read as flat (running minimum), not as two crossings
    assert se.match(0.12, fractions, np.array([0.3, 0.1, 0.11]))[1] == 0
    with pytest.raises(ValueError):
        se.match(float("nan"), fractions, curve)


def test_the_grid_is_bounded_by_marginal_rows():
    rows = se.grid(1_000_000, 50_000)
    assert rows[0] == 1_000 and rows[-1] == 50_000 and len(rows) == se.GRID_POINTS
    assert np.all(np.diff(rows) > 0)
    small = se.grid(30, 50_000)  # 0.1% of 30 rows is below MIN_ROWS
    assert small[0] == se.MIN_ROWS and small[-1] == 30 and np.all(np.diff(small) > 0)
    assert list(se.grid(5, 100)) == [5]


def test_kmarginal_score_is_1000_times_one_minus_tvd_3way(parts):
    train, holdout = parts
    ev = _evaluate(train, holdout, holdout.iloc[:3000], only=["marginals_3way"])
    f = ev.figures
    assert 0 < f["tvd_3way"] < 1
    assert f["kmarginal_score"] == pytest.approx(1000 * (1 - f["tvd_3way"]), abs=1e-9)


# ----------------------------------------------------------------------- TSTR intervals
def _tstr(n_test: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    frames = {k: draw(rng, 1500) for k in ("train", "synthetic")}
    frames["holdout"] = draw(rng, n_test)
    from synthrelease.validators.features import typed_frame

    typed = {k: typed_frame(v, TSTR_COLUMNS) for k, v in frames.items()}
    return tstr_figures(
        synthetic=typed["synthetic"],
        train=typed["train"],
        holdout=typed["holdout"],
        specs=TSTR_COLUMNS,
        target="label",
        seed=1,
    )


def test_tstr_intervals_hold_the_scores_and_narrow_with_more_test_rows():
    widths = []
    for n_test in (300, 4800):
        figures, details = _tstr(n_test)
        assert details["interval"]["draws"] == 200
        for name in ("tstr_score", "trtr_score", "tstr_gap"):
            low, high = figures[f"{name}_low"], figures[f"{name}_high"]
            assert low <= figures[name] <= high, name
        widths.append(figures["tstr_score_high"] - figures["tstr_score_low"])
    assert widths[1] < widths[0] / 2  # sqrt(16) = 4 times narrower, roughly


def _draws(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    picks = [rng.integers(0, n, n) for _ in range(k)]
    return np.stack([np.bincount(p, minlength=n) for p in picks]).astype(float), picks


def test_the_resampled_metrics_are_scikit_learns_on_the_resampled_rows():
    rng = np.random.default_rng(8)
    n = 400
    weights, picks = _draws(n, 5, rng)
    truth = (rng.random(n) < 0.3).astype(float)
    score = (rng.random(n) + truth * 0.3).round(2)  # ties on purpose
    got = _weighted_metric("binary", weights, truth, score)
    assert got == pytest.approx([roc_auc_score(truth[p], score[p]) for p in picks], abs=1e-12)
    label, guess = rng.integers(0, 4, n).astype(float), rng.integers(0, 5, n).astype(float)
    got = _weighted_metric("multiclass", weights, label, guess)
    want = [f1_score(label[p], guess[p], average="macro", zero_division=0) for p in picks]
    assert got == pytest.approx(want, abs=1e-12)
    y, pred = rng.normal(size=n), rng.normal(size=n)
    got = _weighted_metric("regression", weights, y, pred)
    assert got == pytest.approx([r2_score(y[p], pred[p]) for p in picks], abs=1e-12)


# ----------------------------------------------------------------------- report, datasheet
def _verdict(passed: bool) -> Verdict:
    check = Check(name="tvd_2way", figure=0.1, threshold=0.2, passed=passed, reason="", bound="max")
    return Verdict(passed=passed, checks=(check,))


def test_the_report_leads_with_utility_at_a_glance(parts, tmp_path):
    train, holdout = parts
    synthetic = train.sample(frac=0.05, random_state=4).reset_index(drop=True)
    ev = _evaluate(train, holdout, synthetic, settings=Settings(sample_rows=2000))
    assert ev.errors == {}
    page = write_internal_report(
        tmp_path / "report",
        run_id="r1",
        spec_name="toy",
        verdict=_verdict(True),
        figures=ev.figures,
        expectations=None,
        privacy={},
        details=ev.details,
    ).read_text()
    glance = page.index("Utility at a glance")
    assert glance < page.index("Gate checks")
    assert f"{ev.figures['kmarginal_score']:.0f}" in page[glance : page.index("Gate checks")]
    rows = ev.figures["equivalent_sample_rows"]
    assert f"of the real training rows ({rows:,.0f} rows)" in page
    assert "Reading aid" in page and "Pass: every gated figure" in page
    assert "no target declared" in page  # no TSTR without a target
    for section in ("1-way TVD per column", "Worst pairs by 2-way TVD", "Sample equivalence"):
        assert section in page, section
    assert page.count("<svg") >= 6 + 2 * se.SHOWN_PAIRS + 2
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_the_refusal_reading_aid(tmp_path):
    page = write_internal_report(
        tmp_path,
        run_id="r2",
        spec_name="toy",
        verdict=_verdict(False),
        figures={"equivalent_sample_fraction": 0.5, "equivalent_sample_clamp": 0.0},
        expectations=None,
        privacy={},
    ).read_text()
    assert "Refusal: at least one gated figure missed its threshold" in page
    assert "as accurate as a random sample of 50% of the real training rows" in page


@pytest.fixture
def small_spec(spec_factory):
    def make(publish: bool):
        gate = {"max_tvd_1way": 0.2, "publish_figures": publish}
        return load_spec(spec_factory(gate=gate, target="smoker"))

    return make


def _sheet(spec, figures=None):
    from tests.conftest import make_table

    return build_datasheet(
        spec=spec,
        privacy={"epsilon": 3.0, "delta": 1e-6},
        verdict={"passed": True, "checks": []},
        synthetic=make_table(200),
        figures=figures,
    )


FIGURES = {
    "tvd_2way": 0.0812345,
    "kmarginal_score": 912.34567,
    "equivalent_sample_fraction": 0.0423456,
    "equivalent_sample_rows": 1379.0,
    "equivalent_sample_clamp": 0.0,
    "tstr_score": 0.851234,
    "tstr_score_low": 0.841234,
    "tstr_score_high": 0.861234,
    "trtr_score": 0.911234,
    "trtr_score_low": 0.901234,
    "trtr_score_high": 0.921234,
    "tstr_gap": 0.06,
    "tstr_gap_low": 0.051234,
    "tstr_gap_high": 0.071234,
}


def test_the_headline_is_absent_from_the_datasheet_without_the_opt_in(small_spec):
    sheet = _sheet(small_spec(False))
    text = json.dumps(sheet) + datasheet_markdown(sheet)
    for word in (*NEW_FIGURES, "headline", "Utility at a glance", "k-marginal", "accurate as"):
        assert word not in text, word


def test_the_opt_in_publishes_the_headline_under_the_warning_without_row_counts(small_spec):
    sheet = _sheet(small_spec(True), FIGURES)
    real_figures = sheet["real_data_figures"]
    assert "NOT covered by differential privacy" in real_figures["warning"]
    head = real_figures["headline"]
    assert head["kmarginal_score"] == pytest.approx(912.34567)
    assert head["tstr_gap_high"] == pytest.approx(0.071234)
    assert head["sample_equivalence"] == (  # one significant digit when published
        "as accurate as a random sample of 4% of the real training rows"
    )
    assert head["equivalent_sample_fraction"] == 0.04
    text = json.dumps(sheet) + datasheet_markdown(sheet)
    assert "equivalent_sample_rows" not in text and "1379" not in text and "1,379" not in text
    md = datasheet_markdown(sheet)
    warning = md.index("**Warning:**")
    assert warning < md.index("### Utility at a glance") < md.index("| figure | value |")
    assert "912 of 1,000" in md and "trained on synthetic 0.8512 (95% interval 0.841-0.861)" in md


@pytest.mark.integration
def test_the_new_figures_never_reach_a_public_file_of_a_release(tmp_path):
    """A real (small) release without the opt-in: none of the new figures, nor their
    names, in any file of the store."""
    from tests.test_datasheet import _release, _spec

    _, _, figures, release = _release(_spec(tmp_path))
    assert all(name in figures for name in NEW_FIGURES)
    store = Path(release).parents[1]
    for path in store.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".html", ".txt", ".yaml"):
            text = path.read_text(errors="replace")
            for name in NEW_FIGURES:
                assert name not in text, (path.name, name)
