"""The gate fails closed: every bad or missing input fails its check and the verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthrelease.spec import Gate
from synthrelease.validators.expectations import ExpectationResult, Outcome
from synthrelease.validators.gate import THRESHOLD_CHECKS, Verdict, evaluate_gate

GATE = Gate(
    max_tvd_1way=0.1,
    max_tvd_2way=0.2,
    max_exact_copy_excess=0.01,
    expectations=True,
    privacy_audit=False,  # its own tests below
)
GOOD = {
    "tvd_1way": 0.05,
    "tvd_2way": 0.15,
    "tvd_3way": 0.2,
    "quality_score": 0.9,
    "diagnostic_score": 1.0,
    "exact_copy_excess": 0.0,
    "exact_copy_share": 0.3,
    "near_copy_excess": 0.0,
    "dcr_train_share": 0.5,
    "nndr_train_share": 0.5,
    "mia_auc": 0.5,
    "singling_out_risk": 0.0,
    "linkability_risk": 0.0,
    "inference_risk": 0.01,
}
THRESHOLD_NAMES = [name for name, _, _ in THRESHOLD_CHECKS if name != "tstr_gap"]
OK_GX = ExpectationResult(success=True, results=(Outcome("expect_x", "a", True),))
BAD_GX = ExpectationResult(success=False, results=(Outcome("expect_x", "a", False),))


def _check(verdict: Verdict, name: str):
    (check,) = [c for c in verdict.checks if c.name == name]
    return check


def test_all_good_passes() -> None:
    verdict = evaluate_gate(figures=GOOD, expectations=OK_GX, gate=GATE)
    assert verdict.passed is True
    assert [c.name for c in verdict.checks] == THRESHOLD_NAMES + ["expectations"]
    assert all(c.passed for c in verdict.checks)


def test_threshold_is_inclusive_and_numpy_numbers_work() -> None:
    figures = {
        **GOOD,
        "tvd_1way": np.float32(0.05),
        "tvd_2way": 0.2,
        "exact_copy_excess": np.float64(0.01),
        "quality_score": np.float64(GATE.min_quality_score),  # a "min" bound, inclusive
    }
    assert evaluate_gate(figures=figures, expectations=OK_GX, gate=GATE).passed is True


@pytest.mark.parametrize(
    "name,value,reason",
    [
        ("tvd_1way", 0.11, "above the threshold"),
        ("tvd_2way", 0.21, "above the threshold"),
        ("tvd_3way", 0.6, "above the threshold"),
        ("exact_copy_excess", 0.2, "above the threshold"),
        ("quality_score", 0.5, "below the threshold"),
        ("diagnostic_score", 0.8, "below the threshold"),
        ("near_copy_excess", 0.2, "above the threshold"),
        ("dcr_train_share", 0.7, "above the threshold"),
        ("nndr_train_share", 0.7, "above the threshold"),
        ("mia_auc", 0.75, "above the threshold"),
        ("singling_out_risk", 0.3, "above the threshold"),
        ("linkability_risk", 0.3, "above the threshold"),
        ("inference_risk", 0.3, "above the threshold"),
    ],
)
def test_each_threshold_breach_fails(name: str, value: float, reason: str) -> None:
    verdict = evaluate_gate(figures={**GOOD, name: value}, expectations=OK_GX, gate=GATE)
    assert verdict.passed is False
    assert [c.name for c in verdict.failed] == [name]
    assert _check(verdict, name).reason == reason


def test_tstr_check_only_with_a_target() -> None:
    assert "tstr_gap" not in [
        c.name for c in evaluate_gate(figures=GOOD, expectations=OK_GX, gate=GATE).checks
    ]
    missing = evaluate_gate(figures=GOOD, expectations=OK_GX, gate=GATE, target="income")
    assert missing.passed is False and _check(missing, "tstr_gap").reason == "figure is missing"
    ok = evaluate_gate(
        figures={**GOOD, "tstr_gap": 0.05}, expectations=OK_GX, gate=GATE, target="income"
    )
    assert ok.passed is True
    wide = evaluate_gate(
        figures={**GOOD, "tstr_gap": 0.5}, expectations=OK_GX, gate=GATE, target="income"
    )
    assert [c.name for c in wide.failed] == ["tstr_gap"]


@pytest.mark.parametrize(
    "value,reason",
    [
        (float("nan"), "figure is NaN"),
        (np.nan, "figure is NaN"),
        (float("inf"), "figure is infinite"),
        (-float("inf"), "figure is infinite"),
        (None, "figure is None"),
        ("0.01", "figure is not a number"),
        (True, "figure is not a number"),
        ([0.0], "figure is not a number"),
    ],
)
@pytest.mark.parametrize("name", THRESHOLD_NAMES)
def test_bad_figure_fails_closed(name: str, value: object, reason: str) -> None:
    verdict = evaluate_gate(figures={**GOOD, name: value}, expectations=OK_GX, gate=GATE)
    assert verdict.passed is False
    assert _check(verdict, name).passed is False
    assert _check(verdict, name).reason == reason


@pytest.mark.parametrize("name", THRESHOLD_NAMES)
def test_missing_figure_fails(name: str) -> None:
    figures = {k: v for k, v in GOOD.items() if k != name}
    verdict = evaluate_gate(figures=figures, expectations=OK_GX, gate=GATE)
    assert verdict.passed is False
    assert _check(verdict, name).reason == "figure is missing"


def test_no_figures_at_all_fails() -> None:
    assert evaluate_gate(figures={}, expectations=OK_GX, gate=GATE).passed is False


@pytest.mark.parametrize(
    "result,reason",
    [
        (None, "expectations were not run"),
        (BAD_GX, "expectations failed: expect_x"),
        (
            ExpectationResult(success=False, results=(), error="KeyError"),
            "the suite raised KeyError",
        ),
        (ExpectationResult(success=True, results=()), "expectations failed"),
        ({"success": True}, "not an expectations result"),
    ],
)
def test_failed_or_missing_expectations_fail(result: object, reason: str) -> None:
    verdict = evaluate_gate(figures=GOOD, expectations=result, gate=GATE)  # type: ignore[arg-type]
    assert verdict.passed is False
    assert _check(verdict, "expectations").reason == reason


def test_expectations_check_skipped_when_not_required() -> None:
    gate = GATE.model_copy(update={"expectations": False})
    verdict = evaluate_gate(figures=GOOD, expectations=None, gate=gate)
    assert verdict.passed is True
    assert "expectations" not in [c.name for c in verdict.checks]


def test_public_dict_has_no_figures() -> None:
    figures = {
        **GOOD,
        "tvd_1way": 0.0123456,
        "tvd_2way": 0.1654321,
        "exact_copy_excess": 0.0077777,
        "mia_auc": 0.5123456,
    }
    verdict = evaluate_gate(figures=figures, expectations=OK_GX, gate=GATE)
    public = json.dumps(verdict.public_dict())
    for value in (0.0123456, 0.1654321, 0.0077777, 0.5123456):
        assert repr(value)[:6] not in public
    assert "figure" not in public.replace("figure is", "")
    assert json.loads(public)["checks"][0] == {
        "name": "tvd_1way",
        "threshold": 0.1,
        "bound": "max",
        "passed": True,
        "reason": "at or below the threshold",
    }
    internal = verdict.to_dict()
    assert internal["checks"][0]["figure"] == pytest.approx(0.0123456)


def test_to_dict_is_strict_json_with_nan_figure() -> None:
    figures = {**GOOD, "tvd_1way": float("nan")}
    verdict = evaluate_gate(figures=figures, expectations=OK_GX, gate=GATE)
    text = json.dumps(verdict.to_dict(), allow_nan=False)
    assert json.loads(text)["checks"][0]["figure"] is None


def test_verdict_cannot_claim_a_pass_over_failed_checks() -> None:
    failed = evaluate_gate(figures={}, expectations=None, gate=GATE)
    with pytest.raises(ValueError):
        Verdict(passed=True, checks=failed.checks)
    with pytest.raises(ValueError):
        Verdict(passed=True, checks=())


# --------------------------------------------------------------------------- report
def test_internal_report_files_are_private_and_hold_the_verdict(tmp_path) -> None:
    import os
    import stat

    from synthrelease.validators.report import write_internal_report

    figures = {**GOOD, "tvd_2way": float("nan")}
    verdict = evaluate_gate(figures=figures, expectations=BAD_GX, gate=GATE)
    directory = tmp_path / "ws" / "runs" / "r1" / "report"
    old_umask = os.umask(0o022)
    try:
        html_path = write_internal_report(
            directory,
            run_id="r1",
            spec_name="adult<script>",
            verdict=verdict,
            figures=figures,
            expectations=BAD_GX,
            privacy={"epsilon": 1.0, "delta": 1e-6, "lines": [{"step": "mst", "rho": 0.01}]},
        )
    finally:
        os.umask(old_umask)
    assert html_path == directory / "report.html"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("report.json", "report.html"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["report.html", "report.json"]

    data = json.loads((directory / "report.json").read_text())
    assert data["verdict"]["passed"] is False
    assert data["verdict"] == verdict.to_dict()
    assert data["figures"]["tvd_2way"] is None and data["figures"]["tvd_1way"] == 0.05
    assert data["expectations"]["success"] is False
    assert data["privacy"]["lines"][0]["step"] == "mst"

    page = html_path.read_text()
    assert "Gate verdict: FAILED" in page
    assert "figure is NaN" in page and "expect_x" in page and "mst" in page
    assert "adult&lt;script&gt;" in page and "<script" not in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_overwrites_and_shows_a_pass(tmp_path) -> None:
    from synthrelease.validators.report import write_internal_report

    verdict = evaluate_gate(figures=GOOD, expectations=OK_GX, gate=GATE)
    for _ in range(2):
        path = write_internal_report(
            tmp_path / "rep",
            run_id="r2",
            spec_name="s",
            verdict=verdict,
            figures=GOOD,
            expectations=None,
            privacy={},
        )
    assert "Gate verdict: PASSED" in path.read_text()
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["verdict"]["passed"] is True


AUDITED = Gate(privacy_audit=True, expectations=False)


@pytest.mark.parametrize(
    ("audit", "epsilon", "passed", "reason"),
    [
        ({"epsilon_lower_bound": 0.0}, 1.0, True, "lower bound at or below the claimed epsilon"),
        ({"epsilon_lower_bound": 1.0}, 1.0, True, "lower bound at or below the claimed epsilon"),
        ({"epsilon_lower_bound": 1.0001}, 1.0, False, "lower bound above the claimed epsilon"),
        ({"epsilon_lower_bound": 3.2}, 1.0, False, "lower bound above the claimed epsilon"),
        (None, 1.0, False, "the privacy audit did not run"),
        ({"error": "GeneratorError"}, 1.0, False, "the privacy audit did not run"),
        (
            {"epsilon_lower_bound": float("nan")},
            1.0,
            False,
            "the privacy audit gave no lower bound",
        ),
        ({"epsilon_lower_bound": True}, 1.0, False, "the privacy audit gave no lower bound"),
        ({"epsilon_lower_bound": "0"}, 1.0, False, "the privacy audit gave no lower bound"),
        ({"epsilon_lower_bound": 0.0}, None, False, "no claimed epsilon to compare with"),
    ],
)
def test_the_privacy_audit_check_fails_closed(audit, epsilon, passed, reason) -> None:
    verdict = evaluate_gate(
        figures=GOOD, expectations=None, gate=AUDITED, audit=audit, epsilon=epsilon
    )
    check = _check(verdict, "privacy_audit")
    assert (check.passed, check.reason) == (passed, reason)
    assert verdict.passed is passed
    assert "1.0001" not in json.dumps(verdict.public_dict())  # the bound stays internal there


def test_the_privacy_audit_check_can_be_left_out_of_the_gate() -> None:
    gate = Gate(privacy_audit=False, expectations=False)
    verdict = evaluate_gate(figures=GOOD, expectations=None, gate=gate, audit=None, epsilon=1.0)
    assert verdict.passed and "privacy_audit" not in [c.name for c in verdict.checks]
