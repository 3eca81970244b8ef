"""The whole real-data evaluation: every figure, fail-closed checks, bounded samples, and
the gate's verdict on a copying generator versus one that never saw the rows."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Gate
from synthrelease.validators import real
from synthrelease.validators.checks import membership as membership_check
from synthrelease.validators.evaluation import Settings
from synthrelease.validators.expectations import ExpectationResult, Outcome
from synthrelease.validators.gate import THRESHOLD_CHECKS, evaluate_gate
from tests.test_privacy_attacks import COLUMNS, population

OK_GX = ExpectationResult(success=True, results=(Outcome("expect_x", "a", True),))
GATED = [name for name, _, _ in THRESHOLD_CHECKS]
PRIVACY = {
    "exact_copy_excess",
    "near_copy_excess",
    "dcr_train_share",
    "nndr_train_share",
    "mia_auc",
    "singling_out_risk",
    "linkability_risk",
    "inference_risk",
}


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(99)
    train, holdout, fresh = population(rng, 800), population(rng, 800), population(rng, 1000)
    return train, holdout, fresh


def _evaluate(train, holdout, synthetic, *, seed=0, settings=None, target="c"):
    settings = settings or Settings()
    return real.evaluate_against_real(
        train=SensitiveTable(train, label="train"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=synthetic,
        discretiser=Discretiser(COLUMNS, default_bins=8),
        target=target,
        rng=np.random.default_rng(seed),
        settings=settings,
    )


def test_every_gated_figure_is_computed_and_a_fresh_sample_passes_the_gate(parts):
    train, holdout, fresh = parts
    evaluation = _evaluate(train, holdout, fresh)
    assert evaluation.errors == {}
    for name in GATED:
        assert math.isfinite(evaluation.figures[name]), name
    for key in ("plots", "tstr", "sdmetrics", "distance", "membership", "inference", "settings"):
        assert key in evaluation.details
    gate = Gate(max_tvd_1way=0.15, max_tvd_2way=0.3, privacy_audit=False)  # 800-row holdout
    verdict = evaluate_gate(figures=evaluation.figures, expectations=OK_GX, gate=gate, target="c")
    assert verdict.passed, [(c.name, c.figure) for c in verdict.failed]
    json.dumps(evaluation.to_dict())  # JSON-ready (NaN allowed, as figures.json)


def test_a_copy_of_the_training_rows_is_blocked_by_the_privacy_checks(parts):
    train, holdout, _ = parts
    copy = train.sample(frac=1.0, random_state=5).reset_index(drop=True)
    evaluation = _evaluate(train, holdout, copy)
    verdict = evaluate_gate(
        figures=evaluation.figures,
        expectations=OK_GX,
        gate=Gate(max_tvd_1way=0.15, max_tvd_2way=0.3, privacy_audit=False),
        target="c",
    )
    assert verdict.passed is False
    assert {c.name for c in verdict.failed} == PRIVACY  # every privacy check, no utility one


def test_a_crashing_check_fails_closed_without_its_message(parts, monkeypatch, caplog):
    train, holdout, fresh = parts

    def boom(**_: object):
        raise RuntimeError("secret value 987654")

    monkeypatch.setattr(membership_check, "membership_attack", boom)  # as its check calls it
    with caplog.at_level(logging.DEBUG):
        evaluation = _evaluate(train, holdout, fresh, target=None)
    assert evaluation.errors == {"membership": "RuntimeError"}
    assert all(
        math.isnan(evaluation.figures[k]) for k in ("mia_auc", "mia_auc_low", "mia_auc_high")
    )
    assert "987654" not in json.dumps(evaluation.to_dict()) and "987654" not in caplog.text
    assert "tstr_gap" not in evaluation.figures  # no target: no TSTR
    verdict = evaluate_gate(figures=evaluation.figures, expectations=OK_GX, gate=Gate())
    assert "mia_auc" in {c.name for c in verdict.failed}


def test_samples_are_bounded_and_seeded(parts):
    train, holdout, fresh = parts
    settings = Settings(sample_rows=300, attack_rows=60, max_marginals=5, singling_out_queries=50)
    a = _evaluate(train, holdout, fresh, settings=settings, seed=3, target=None)
    b = _evaluate(train, holdout, fresh, settings=settings, seed=3, target=None)
    assert json.dumps(a.figures) == json.dumps(b.figures)
    d = a.details
    assert d["distance"]["reference_rows"] == 300 and d["distance"]["synthetic_rows_compared"] == 60
    assert d["membership"]["members"] == 60 and d["membership"]["synthetic_rows"] == 300
    assert d["linkability"]["targets"] == 60 and d["marginals_3way"]["marginals"] == 5
    assert d["settings"] == settings.to_dict()


def test_wrong_arguments_raise():
    frame = population(np.random.default_rng(0), 20)
    with pytest.raises(TypeError):
        real.evaluate_against_real(
            train=frame,
            holdout=SensitiveTable(frame, label="h"),
            synthetic=frame,
            discretiser=Discretiser(COLUMNS),
            target=None,
            rng=np.random.default_rng(0),
        )
    with pytest.raises(ValueError):
        _evaluate(frame, frame, frame, target="nope")
    with pytest.raises(ValueError):
        Settings(sample_rows=0)


def test_real_numbers_outside_a_narrow_bound_are_clipped_not_fatal(parts):
    """A DP-estimated bound can be narrower than the rows; validation clips, as training."""
    train, holdout, fresh = parts
    holdout = holdout.copy()
    holdout.loc[:9, "x"] = 7.5  # outside x's declared [0, 1]
    evaluation = _evaluate(
        train, holdout, fresh, target=None, settings=Settings(sample_rows=400, attack_rows=100)
    )
    assert evaluation.errors == {}
    assert math.isfinite(evaluation.figures["tvd_1way"])
