"""zCDP <-> (epsilon, delta) conversion and the privacy report.

Pinned values are checked two ways: against the numbers Private-PGM's ``cdp2adp.py``
(the reference implementation, 1000 fixed bisection steps) returns, and against an
independent high-precision computation with mpmath below.
"""

from __future__ import annotations

import json
import math

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthrelease.generators.accounting import (
    ACCOUNTANT,
    BudgetLine,
    PrivacyReport,
    cdp_delta,
    cdp_eps,
    cdp_rho,
)

mpmath.mp.dps = 40


# --------------------------------------------------------------------------- independent
def _bisect(f, lo, hi, steps: int = 90) -> mpmath.mpf:
    """Root of a monotone ``f`` with f(lo) < 0 < f(hi), in 40-digit arithmetic."""
    lo, hi = mpmath.mpf(lo), mpmath.mpf(hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def _mp_delta(rho: float, eps: float) -> mpmath.mpf:
    """CKS 2020 Cor. 13: delta = inf_a exp((a-1)(a rho - eps)) / (a-1) * (1-1/a)^a,
    minimised at the root of the log-derivative (2a-1) rho - eps + log(1-1/a)."""
    rho, eps = mpmath.mpf(rho), mpmath.mpf(eps)
    alpha = _bisect(
        lambda a: (2 * a - 1) * rho - eps + mpmath.log(1 - 1 / a),
        mpmath.mpf("1.000000001"),
        (eps + 1) / (2 * rho) + 2,
    )
    log_delta = (alpha - 1) * (alpha * rho - eps) + alpha * mpmath.log(1 - 1 / alpha)
    return min(mpmath.mpf(1), mpmath.exp(log_delta) / (alpha - 1))


def _mp_eps(rho: float, delta: float) -> mpmath.mpf:
    hi = rho + 2 * math.sqrt(rho * math.log(1 / delta))
    return _bisect(lambda e: delta - _mp_delta(rho, e), 0, hi)


def _mp_rho(eps: float, delta: float) -> mpmath.mpf:
    return _bisect(lambda r: _mp_delta(r, eps) - delta, mpmath.mpf("1e-12"), eps + 1)


# Values returned by Private-PGM mechanisms/cdp2adp.py (cdp_rho(eps, delta)).
PRIVATE_PGM_RHO = [
    (0.3, 1e-6, 0.002539642523023561),
    (1.0, 1e-6, 0.024355970359538372),
    (3.0, 1e-6, 0.18506984065340149),
    (1.0, 1e-5, 0.03055659519763956),
    (10.0, 1e-9, 1.0907857043970155),
]


@pytest.mark.parametrize(("eps", "delta", "rho"), PRIVATE_PGM_RHO)
def test_cdp_rho_matches_private_pgm(eps: float, delta: float, rho: float) -> None:
    assert cdp_rho(epsilon=eps, delta=delta) == pytest.approx(rho, rel=1e-12)


@pytest.mark.parametrize(("eps", "delta", "rho"), PRIVATE_PGM_RHO)
def test_cdp_rho_matches_independent_mpmath(eps: float, delta: float, rho: float) -> None:
    assert cdp_rho(epsilon=eps, delta=delta) == pytest.approx(float(_mp_rho(eps, delta)), rel=1e-8)


@pytest.mark.parametrize(("rho", "delta"), [(0.0243, 1e-6), (0.5, 1e-5), (2.0, 1e-9), (1e-4, 1e-3)])
def test_cdp_eps_matches_independent_mpmath(rho: float, delta: float) -> None:
    assert cdp_eps(rho=rho, delta=delta) == pytest.approx(float(_mp_eps(rho, delta)), rel=1e-8)


@pytest.mark.parametrize(("rho", "eps"), [(0.0243, 1.0), (0.5, 3.0), (0.01, 0.5)])
def test_cdp_delta_matches_independent_mpmath(rho: float, eps: float) -> None:
    assert cdp_delta(rho=rho, epsilon=eps) == pytest.approx(float(_mp_delta(rho, eps)), rel=1e-8)


def test_conversion_beats_the_standard_bound() -> None:
    # Bun-Steinke 2016: eps <= rho + 2 sqrt(rho log(1/delta)); CKS is strictly tighter.
    rho, delta = 0.1, 1e-6
    assert cdp_eps(rho=rho, delta=delta) < rho + 2 * math.sqrt(rho * math.log(1 / delta))


def test_degenerate_inputs() -> None:
    assert cdp_delta(rho=0.0, epsilon=1.0) == 0.0
    assert cdp_eps(rho=0.0, delta=1e-6) == 0.0
    assert cdp_delta(rho=50.0, epsilon=0.0) == 1.0


def test_privacy_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        cdp_rho(1.0, 1e-6)  # type: ignore[misc]
    with pytest.raises(TypeError):
        cdp_eps(0.1, 1e-6)  # type: ignore[misc]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_invalid_inputs_raise(bad: float) -> None:
    with pytest.raises(ValueError):
        cdp_rho(epsilon=bad, delta=1e-6)
    with pytest.raises(ValueError):
        cdp_eps(rho=0.1, delta=bad)


# --------------------------------------------------------------------------- properties
epsilons = st.floats(min_value=0.01, max_value=50.0)
deltas = st.floats(min_value=1e-12, max_value=1e-2)
rhos = st.floats(min_value=1e-6, max_value=10.0)


@settings(max_examples=60, deadline=None)
@given(eps=epsilons, delta=deltas)
def test_round_trip_never_overspends(eps: float, delta: float) -> None:
    rho = cdp_rho(epsilon=eps, delta=delta)
    back = cdp_eps(rho=rho, delta=delta)
    assert back <= eps
    assert back == pytest.approx(eps, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(rho=rhos, delta=deltas, factor=st.floats(min_value=1.01, max_value=10.0))
def test_eps_grows_with_rho(rho: float, delta: float, factor: float) -> None:
    assert cdp_eps(rho=rho * factor, delta=delta) > cdp_eps(rho=rho, delta=delta)


@settings(max_examples=60, deadline=None)
@given(rho=rhos, delta=deltas, factor=st.floats(min_value=1.5, max_value=100.0))
def test_eps_shrinks_as_delta_grows(rho: float, delta: float, factor: float) -> None:
    assert cdp_eps(rho=rho, delta=min(delta * factor, 0.5)) <= cdp_eps(rho=rho, delta=delta)


@settings(max_examples=60, deadline=None)
@given(eps=epsilons, delta=deltas, factor=st.floats(min_value=1.01, max_value=10.0))
def test_rho_grows_with_epsilon(eps: float, delta: float, factor: float) -> None:
    assert cdp_rho(epsilon=eps * factor, delta=delta) > cdp_rho(epsilon=eps, delta=delta)


@settings(max_examples=60, deadline=None)
@given(rho=rhos, eps=st.floats(min_value=0.0, max_value=50.0), extra=st.floats(0.01, 5.0))
def test_delta_shrinks_with_epsilon(rho: float, eps: float, extra: float) -> None:
    assert cdp_delta(rho=rho, epsilon=eps + extra) <= cdp_delta(rho=rho, epsilon=eps)


# --------------------------------------------------------------------------- report
def _report() -> PrivacyReport:
    rho = cdp_rho(epsilon=1.0, delta=1e-6)
    lines = [
        BudgetLine("1-way", rho / 3, "Gaussian"),
        BudgetLine("select", rho / 3, "EM"),
        BudgetLine("2-way", rho / 3, "Gaussian"),
    ]
    return PrivacyReport.from_lines(lines, delta=1e-6)


def test_report_sums_and_serialises() -> None:
    report = _report()
    assert report.accountant == ACCOUNTANT
    assert math.fsum(line.rho for line in report.lines) == pytest.approx(report.rho, rel=1e-15)
    assert report.epsilon == pytest.approx(1.0, rel=1e-9)
    raw = json.loads(json.dumps(report.to_dict()))
    assert raw["accountant"] == ACCOUNTANT
    assert [x["step"] for x in raw["lines"]] == ["1-way", "select", "2-way"]
    assert PrivacyReport.from_dict(raw) == report


def test_report_refuses_lines_that_do_not_sum() -> None:
    with pytest.raises(ValueError):
        PrivacyReport(epsilon=1.0, delta=1e-6, rho=0.5, lines=(BudgetLine("a", 0.1),))
