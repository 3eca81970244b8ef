"""DP-SGD accounting: pinned epsilons, an independent RDP computation, exact GDP, the
noise calibration and the report (no data, no training: fast)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthrelease.errors import GeneratorError
from synthrelease.generators.dpsgd.accounting import (
    DPSGDReport,
    Mechanism,
    calibrate_noise,
    epsilon_of,
    gaussian_entry,
    plan_budget,
)

# (q, sigma, steps) -> epsilon at delta 1e-5, from ../shared/FACTS.md (opacus 1.6 and
# Google dp-accounting 0.6): RDP (both agree), opacus PRV, dp-accounting PLD.
PINNED = [
    (0.01, 4.0, 10_000, 1.0355, 0.9569, 0.9600),
    (0.01, 1.1, 1_000, 1.7118, 1.5255, 1.5162),
    (0.01, 1.0, 2_000, 2.8665, 2.5940, 2.5850),
    (0.04, 1.5, 2_250, 7.32911, 6.7774, 6.7695),
    (1.0, 10.0, 100, 4.7285, 4.3874, 4.3772),
]
DELTA = 1e-5


# --------------------------------------------------------------------------- independent
def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _rdp_sampled_gaussian(q: float, sigma: float, alpha: int) -> float:
    """Mironov, Talwar & Zhang 2019, integer orders: binomial expansion, in log space."""
    if q == 1.0:
        return alpha / (2 * sigma**2)
    logs = [
        _log_comb(alpha, k)
        + (alpha - k) * math.log1p(-q)
        + k * math.log(q)
        + (k * k - k) / (2 * sigma**2)
        for k in range(alpha + 1)
    ]
    top = max(logs)
    return (top + math.log(math.fsum(math.exp(x - top) for x in logs))) / (alpha - 1)


def independent_rdp_epsilon(history, delta: float) -> float:
    """Compose at integer orders 2..256, convert with Balle et al. 2020 (Thm 21)."""
    best = math.inf
    for a in range(2, 257):
        rdp = math.fsum(t * _rdp_sampled_gaussian(q, z, a) for z, q, t in history)
        best = min(best, rdp + math.log((a - 1) / a) - (math.log(delta) + math.log(a)) / (a - 1))
    return best


def exact_gdp_epsilon(mu: float, delta: float) -> float:
    """Exact epsilon of mu-GDP (Dong, Roth & Su 2019): bisection on its delta(eps)."""
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    d = lambda e: phi(-e / mu + mu / 2) - math.exp(e) * phi(-e / mu - mu / 2)  # noqa: E731
    lo, hi = 0.0, 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if d(mid) > delta else (lo, mid)
    return hi


# --------------------------------------------------------------------------- pinned
@pytest.mark.parametrize("q, sigma, steps, rdp, prv, pld", PINNED)
def test_rdp_matches_pinned_and_independent_computation(q, sigma, steps, rdp, prv, pld):
    ours = epsilon_of([(sigma, q, steps)], delta=DELTA, accountant="rdp")
    assert ours == pytest.approx(rdp, rel=1e-4)  # the same maths as opacus/dp-accounting
    independent = independent_rdp_epsilon([(sigma, q, steps)], DELTA)
    assert ours == pytest.approx(independent, rel=0.01)
    assert ours <= independent + 1e-9  # opacus also tries fractional orders


@pytest.mark.parametrize("q, sigma, steps, rdp, prv, pld", PINNED)
def test_prv_matches_pinned_and_google_pld(q, sigma, steps, rdp, prv, pld):
    ours = epsilon_of([(sigma, q, steps)], delta=DELTA, accountant="prv")
    assert ours == pytest.approx(pld, rel=0.01)  # an independent accountant (dp-accounting)
    assert ours == pytest.approx(prv, rel=0.01)
    assert ours <= rdp  # RDP is always the looser bound


def test_prv_matches_exact_gaussian_dp():
    # q = 1, sigma = 10, 100 steps is exactly mu-GDP with mu = sqrt(100) / 10 = 1
    exact = exact_gdp_epsilon(1.0, DELTA)
    assert exact == pytest.approx(4.3772, abs=2e-4)
    assert epsilon_of([(10.0, 1.0, 100)], delta=DELTA, accountant="prv") == pytest.approx(
        exact, rel=0.01
    )


def test_composition_of_gaussians_and_dpsgd_is_independently_right():
    history = [gaussian_entry(0.002), gaussian_entry(0.01), (1.2, 0.02, 1500)]
    assert history[0] == (pytest.approx(math.sqrt(1 / 0.004)), 1.0, 1)
    ours = epsilon_of(history, delta=1e-6)
    assert ours == pytest.approx(independent_rdp_epsilon(history, 1e-6), rel=0.01)
    assert ours > epsilon_of(history[2:], delta=1e-6)


@settings(max_examples=10, deadline=None)
@given(
    q=st.floats(0.001, 0.5),
    sigma=st.floats(0.5, 8.0),
    steps=st.integers(1, 5_000),
    more=st.integers(1, 5_000),
)
def test_epsilon_grows_with_steps_and_shrinks_with_noise(q, sigma, steps, more):
    eps = epsilon_of([(sigma, q, steps)], delta=1e-6)
    assert epsilon_of([(sigma, q, steps + more)], delta=1e-6) >= eps - 1e-12
    assert epsilon_of([(sigma * 1.5, q, steps)], delta=1e-6) <= eps + 1e-12


# --------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibration_is_tight_and_never_over_budget(accountant):
    prior = [gaussian_entry(0.003)]
    sigma = calibrate_noise(
        prior=prior, sample_rate=0.02, steps=1000, epsilon=2.0, delta=1e-6, accountant=accountant
    )
    at = lambda z: epsilon_of(prior + [(z, 0.02, 1000)], delta=1e-6, accountant=accountant)  # noqa: E731
    assert at(sigma) <= 2.0
    assert at(sigma * (1 - 2e-3)) > at(sigma) and at(sigma) > 2.0 * 0.99


def test_unreachable_epsilon_is_a_clear_error():
    with pytest.raises(GeneratorError, match="unreachable.*fewer 'epochs'.*smaller 'batch_size'"):
        calibrate_noise(
            prior=[], sample_rate=1.0, steps=10_000, epsilon=0.1, delta=1e-6, max_noise=20.0
        )
    with pytest.raises(GeneratorError, match="unreachable"):  # the prior alone spends it
        calibrate_noise(
            prior=[gaussian_entry(5.0)], sample_rate=0.01, steps=10, epsilon=1.0, delta=1e-6
        )


def test_budget_plan_is_plain_arithmetic():
    plan = plan_budget(
        epsilon=3.0,
        delta=1e-6,
        count_share=0.01,
        domain_share=0.1,
        numeric_undeclared=2,
        categorical_undeclared=1,
    )
    assert plan.delta_per_category == pytest.approx(1e-7)
    assert plan.delta_accountant == pytest.approx(9e-7)
    assert plan.rho_count == pytest.approx(0.01 * plan.rho_ref)
    assert plan.rho_per_domain == pytest.approx(0.1 * plan.rho_ref / 3)
    declared = plan_budget(
        epsilon=3.0,
        delta=1e-6,
        count_share=0.01,
        domain_share=0.1,
        numeric_undeclared=0,
        categorical_undeclared=0,
    )
    assert declared.rho_per_domain == 0 and declared.delta_accountant == 1e-6  # share unused
    with pytest.raises(GeneratorError, match="domain_share"):
        plan_budget(
            epsilon=3.0,
            delta=1e-6,
            count_share=0.01,
            domain_share=0.0,
            numeric_undeclared=1,
            categorical_undeclared=0,
        )


# --------------------------------------------------------------------------- report
def test_report_recomputes_from_its_own_record():
    from opacus.accountants import RDPAccountant

    mechs = [
        Mechanism("row count", "Gaussian", 20.0, 1.0, 1),
        Mechanism("categories of city", "Gaussian partition selection", 8.0, 1.0, 1, delta=1e-8),
        Mechanism("DP-SGD training", "Poisson-subsampled Gaussian", 1.1, 0.01, 2000),
    ]
    report = DPSGDReport.build(mechs, delta=1e-6, accountant="rdp", training={"steps": 2000})
    raw = report.to_dict()
    assert raw["training"]["delta_accountant"] == pytest.approx(1e-6 - 1e-8)
    acc = RDPAccountant()
    acc.history = [
        (m["noise_multiplier"], m["sample_rate"], m["steps"]) for m in raw["composition"]
    ]
    assert acc.get_epsilon(delta=raw["training"]["delta_accountant"]) == pytest.approx(
        raw["epsilon"], rel=1e-3
    )
    assert sum(line["rho"] for line in raw["lines"]) == pytest.approx(raw["rho"])
    assert raw["lines"][0]["rho"] == pytest.approx(1 / (2 * 20.0**2))  # a Gaussian's zCDP rho
    again = DPSGDReport.from_dict(raw)
    assert again == report and again.to_dict() == raw
