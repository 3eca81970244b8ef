"""The independent accountant (issue 15, item 4): every generator's budget, recomputed with
a second accountant library at several (epsilon, delta, steps) points.

Each test fits a generator (MST, AIM, DP-SGD) on a small seeded table and recomputes the
epsilon of the :class:`PrivacyReport` it returns with Google's ``dp_accounting`` (0.6,
pinned in the test extras) and closed forms written here, never with our accountants
(``generators.accounting``, ``generators.dpsgd.accounting``) nor opacus:

- zCDP lines (MST, AIM): each line is a ``ZCDpEvent(rho)``, composed by dp-accounting's
  RDP accountant over a dense grid of orders; the Canonne-Kamath-Steinke conversion is also
  minimised here over a continuous order. Ours must match both, and sit between the exact
  epsilon of a Gaussian of the same rho (PLD: no rho-zCDP conversion can go below it) and
  Bun-Steinke's looser closed form.
- DP-SGD: the report's composition (row count, DP domains, Poisson-subsampled training)
  as dp-accounting events, under its RDP and PLD accountants; the RDP accountant's epsilon
  within 1% of dp-accounting's RDP and never below its PLD, PRV's within 1% of its PLD.
- The lines themselves: a spy on the noise source (and on the exponential mechanisms'
  epsilon and DP-SGD's sampler and noise) records what actually ran; the lines must charge
  exactly that (Gaussian of scale s: 1/(2 s^2); an eps-DP exponential mechanism: eps^2/8).

Direction (as in tests/test_guarantee.py): within 1% of the independent figure of the
same kind; never looser than it where ours is exact (the zCDP conversion over a continuous
order); never below a tight figure (PLD), which is the direction that could understate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from dp_accounting import dp_event
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant
from pydantic import TypeAdapter
from scipy.optimize import minimize_scalar

from synthrelease.generators import AIMGenerator, MSTGenerator
from synthrelease.generators.accounting import PrivacyReport
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column
from tests.conftest import SMALL_COLUMNS, make_table

COLUMNS = {n: TypeAdapter(Column).validate_python(c) for n, c in SMALL_COLUMNS.items()}
ROWS = 1000
EPSILONS = (0.5, 1.0, 3.0)
DELTAS = (1e-6, 1e-9)
# zCDP's RDP curve is rho * alpha: cheap at any order, so a grid dense in log(alpha - 1)
ZCDP_ORDERS = list(1.0 + np.geomspace(0.02, 1e5, 4000))
GAUSSIAN, EM = "Gaussian", "exponential mechanism"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- spy
class SpyNoise(NoiseSource):
    """Seeded noise that records every Gaussian scale and Gumbel-max selection drawn."""

    def __init__(self, seed: int) -> None:
        super().__init__(mode="seeded", seed=seed)
        self.scales: list[float] = []
        self.gumbels = 0

    def normal(self, scale: float, size: Any) -> np.ndarray:
        self.scales.append(float(scale))
        return super().normal(scale, size)

    def gumbel(self, size: Any) -> np.ndarray:
        self.gumbels += 1
        return super().gumbel(size)


@dataclass
class Fit:
    report: PrivacyReport
    noise: SpyNoise
    em_eps: list[float] = field(default_factory=list)  # each selection's epsilon
    rates: list[float] = field(default_factory=list)  # DP-SGD: each step's Poisson rate
    stds: set[float] = field(default_factory=set)  # DP-SGD: the gradient noise std drawn


_FITS: dict[tuple, Fit] = {}


def _table() -> SensitiveTable:
    return SensitiveTable(make_table(ROWS, seed=0), label="small")


def fit_marginal(kind: str, epsilon: float, delta: float, quantile: bool) -> Fit:
    """MST or AIM fitted once per point (shared by the tests below), with spies on."""
    key = (kind, epsilon, delta, quantile)
    if key in _FITS:
        return _FITS[key]
    from synthrelease.generators.marginal import aim_mechanism, mst

    params: dict[str, Any] = {"bins": 8}
    if quantile:
        params["quantile_edges"] = ["score"]
    noise = SpyNoise(0)
    out = Fit(report=None, noise=noise)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:
        if kind == "mst":
            em_epsilon = mst._em_epsilon

            def spy_em_epsilon(rho: float, d: int) -> float:
                out.em_eps.append(em_epsilon(rho, d))
                return out.em_eps[-1]

            mp.setattr(mst, "_em_epsilon", spy_em_epsilon)
            gen = MSTGenerator(
                COLUMNS, epsilon=epsilon, delta=delta, params={**params, "iters": 50}
            )
        else:
            select = aim_mechanism._select

            def spy_select(*args: Any, eps: float, **kwargs: Any) -> Any:
                out.em_eps.append(eps)
                return select(*args, eps=eps, **kwargs)

            mp.setattr(aim_mechanism, "_select", spy_select)
            aim = {"rounds": 8, "max_rounds": 3, "iters": 10, "final_iters": 20}
            gen = AIMGenerator(
                COLUMNS, epsilon=epsilon, delta=delta, params={**params, **aim}, target="smoker"
            )
        out.report = gen.fit(_table(), noise=noise)
    if kind == "mst":  # _em_epsilon ran once in the selection, once for the line
        assert len(set(out.em_eps)) == 1
        out.em_eps = out.em_eps[:1] * noise.gumbels
    _FITS[key] = out
    return out


# --------------------------------------------------------------------------- zCDP, independently
def rdp_epsilon_of_zcdp_lines(lines, delta: float) -> float:
    """dp-accounting's RDP accountant: one rho-zCDP event per budget line."""
    accountant = RdpAccountant(orders=ZCDP_ORDERS)
    for line in lines:
        accountant.compose(dp_event.ZCDpEvent(line.rho))
    return accountant.get_epsilon(delta)


def cks_epsilon(rho: float, delta: float) -> float:
    """Canonne, Kamath & Steinke 2020 (Prop. 12): rho-zCDP gives (eps, delta)-DP with
    eps = inf_a a rho + log(1 - 1/a) - (log delta + log a) / (a - 1), minimised over
    log(a - 1) by scipy (a continuous order, no grid)."""

    def eps(x: float) -> float:
        a = 1.0 + math.exp(x)
        return a * rho + math.log1p(-1.0 / a) - (math.log(delta) + math.log(a)) / (a - 1.0)

    best = minimize_scalar(eps, bounds=(-12.0, 16.0), method="bounded", options={"xatol": 1e-9})
    return float(best.fun)


def gaussian_pld_epsilon(rho: float, delta: float) -> float:
    """Exact (PLD) epsilon of the Gaussian mechanism with zCDP rho (sigma = 1/sqrt(2 rho)):
    a rho-zCDP mechanism, so no valid rho-zCDP -> (eps, delta) conversion goes below it."""
    accountant = PLDAccountant()
    accountant.compose(dp_event.GaussianDpEvent(1.0 / math.sqrt(2.0 * rho)))
    return accountant.get_epsilon(delta)


MARGINAL_POINTS = [
    pytest.param(kind, quantile, id=f"{kind}{'-quantile-edges' if quantile else ''}")
    for kind in ("mst", "aim")
    for quantile in (False, True)
]


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize(("kind", "quantile"), MARGINAL_POINTS)
def test_zcdp_lines_match_an_independent_accountant(kind, quantile, epsilon, delta):
    report = fit_marginal(kind, epsilon, delta, quantile).report
    assert report.delta == delta and report.lines
    assert all(line.rho > 0 for line in report.lines)
    assert all(GAUSSIAN in line.mechanism or EM in line.mechanism for line in report.lines)
    rho = math.fsum(line.rho for line in report.lines)
    ours = report.epsilon
    independent = rdp_epsilon_of_zcdp_lines(report.lines, delta)
    assert ours == pytest.approx(independent, rel=0.01)
    assert ours <= independent * (1 + 1e-9)  # the exact conversion beats any order grid
    assert ours == pytest.approx(cks_epsilon(rho, delta), rel=1e-6)
    assert gaussian_pld_epsilon(rho, delta) <= ours  # never below a tight figure
    assert ours <= rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))  # Bun-Steinke 2016
    assert independent <= epsilon * 1.01  # the recomputed spend is the requested one


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize(("kind", "quantile"), MARGINAL_POINTS)
def test_zcdp_lines_charge_what_the_mechanisms_ran(kind, quantile, delta):
    """Every Gaussian draw is one sensitivity-1 marginal or histogram (add/remove moves
    one cell by 1): it costs 1/(2 scale^2); every Gumbel-max selection is an eps-DP
    exponential mechanism: eps^2/8 (bounded range, Cesar & Rogers 2021). The lines of
    each kind sum to exactly that, and the total recomputed from the draws alone gives
    the stated epsilon."""
    fit = fit_marginal(kind, 1.0, delta, quantile)
    lines = fit.report.lines
    gaussian = [1.0 / (2.0 * s**2) for s in fit.noise.scales]
    em = [e**2 / 8.0 for e in fit.em_eps]
    assert len(fit.em_eps) == fit.noise.gumbels > 0
    charged_gaussian = math.fsum(line.rho for line in lines if GAUSSIAN in line.mechanism)
    charged_em = math.fsum(line.rho for line in lines if EM in line.mechanism)
    assert charged_gaussian == pytest.approx(math.fsum(gaussian), rel=1e-9)
    assert charged_em == pytest.approx(math.fsum(em), rel=1e-9)
    if kind == "aim":  # one selection line per round
        assert sum(EM in line.mechanism for line in lines) == fit.noise.gumbels
    accountant = RdpAccountant(orders=ZCDP_ORDERS)
    for rho in gaussian:
        accountant.compose(dp_event.GaussianDpEvent(1.0 / math.sqrt(2.0 * rho)))
    for rho in em:
        accountant.compose(dp_event.ZCDpEvent(rho))
    assert fit.report.epsilon == pytest.approx(accountant.get_epsilon(delta), rel=0.01)


# --------------------------------------------------------------------------- DP-SGD
UNDECLARED = {
    **SMALL_COLUMNS,
    "age": {"type": "numerical", "integer": True},  # no lower/upper: DP bounds
    "colour": {"type": "categorical"},  # no category set: DP partition selection
}

# (epsilon, delta, epochs, batch_size, accountant, undeclared domains): 10 to 100 steps
DPSGD_POINTS = [
    pytest.param(1.0, 1e-6, 1, 100, "rdp", False, id="eps1-d1e-6-10steps-rdp"),
    pytest.param(0.5, 1e-6, 3, 200, "rdp", False, id="eps0.5-d1e-6-15steps-rdp"),
    pytest.param(3.0, 1e-9, 2, 50, "rdp", False, id="eps3-d1e-9-40steps-rdp"),
    pytest.param(1.0, 1e-9, 2, 20, "rdp", False, id="eps1-d1e-9-100steps-rdp"),
    pytest.param(3.0, 1e-6, 2, 100, "rdp", True, id="eps3-d1e-6-20steps-rdp-undeclared"),
    pytest.param(1.0, 1e-6, 1, 100, "prv", False, id="eps1-d1e-6-10steps-prv"),
    pytest.param(3.0, 1e-9, 2, 50, "prv", False, id="eps3-d1e-9-40steps-prv"),
]


def fit_dpsgd(epsilon, delta, epochs, batch_size, accountant, undeclared) -> Fit:
    """DP-SGD fitted once per point, with spies on its noise, sampler and gradient noise."""
    key = ("dpsgd", epsilon, delta, epochs, batch_size, accountant, undeclared)
    if key in _FITS:
        return _FITS[key]
    from synthrelease.generators.dpsgd import train
    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from synthrelease.generators.dpsgd.randomness import StepRandomness

    columns = {n: TypeAdapter(Column).validate_python(c) for n, c in UNDECLARED.items()}
    params = {
        "epochs": epochs,
        "batch_size": batch_size,
        "hidden": [8],
        "bins": 4,
        "device": "cpu",
        "accountant": accountant,
    }
    gen = DPSGDGenerator(
        columns if undeclared else COLUMNS,
        epsilon=epsilon,
        delta=delta,
        params=params,
        domain_share=0.1 if undeclared else 0.0,
    )
    noise = SpyNoise(0)
    out = Fit(report=None, noise=noise)  # type: ignore[arg-type]
    sample, gaussian = train.poisson_indices, StepRandomness.gaussian

    def spy_sample(rows: int, rate: float, randomness: Any) -> torch.Tensor:
        out.rates.append(rate)
        return sample(rows, rate, randomness)

    def spy_gaussian(self: Any, std: float, reference: torch.Tensor) -> torch.Tensor:
        out.stds.add(float(std))
        return gaussian(self, std, reference)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "poisson_indices", spy_sample)
        mp.setattr(StepRandomness, "gaussian", spy_gaussian)
        out.report = gen.fit(_table(), noise=noise)
    _FITS[key] = out
    return out


def _events(composition) -> list[tuple[dp_event.DpEvent, int]]:
    """The composition as dp-accounting events (opacus' history format, read here)."""
    events = []
    for m in composition:
        event: dp_event.DpEvent = dp_event.GaussianDpEvent(m.noise_multiplier)
        if m.sample_rate < 1.0:
            event = dp_event.PoissonSampledDpEvent(m.sample_rate, event)
        events.append((event, m.steps))
    return events


def _compose(accountant, events):
    for event, count in events:
        accountant.compose(event, count)
    return accountant


@pytest.mark.parametrize(
    ("epsilon", "delta", "epochs", "batch_size", "accountant", "undeclared"), DPSGD_POINTS
)
def test_dpsgd_budget_matches_an_independent_accountant(
    epsilon, delta, epochs, batch_size, accountant, undeclared
):
    fit = fit_dpsgd(epsilon, delta, epochs, batch_size, accountant, undeclared)
    report = fit.report
    training = report.composition[-1]
    assert report.delta == delta and training.steps == epochs * round(1 / training.sample_rate)
    # category discovery spends a delta of its own, outside the accountant
    extra = math.fsum(m.delta for m in report.composition)
    assert (extra > 0) == undeclared
    delta_acc = delta - extra
    events = _events(report.composition)
    rdp = _compose(RdpAccountant(), events).get_epsilon(delta_acc)
    pld = _compose(PLDAccountant(), events).get_epsilon(delta_acc)
    ours = report.epsilon
    assert ours <= epsilon
    assert pld < rdp
    if accountant == "rdp":
        assert ours == pytest.approx(rdp, rel=0.01)  # the same kind, independently
        assert pld <= ours  # never below the tight figure
    else:  # PRV: tight, so it may sit a little below PLD, never by 1% (and see below)
        assert pld * (1 - 0.01) <= ours <= rdp

    # the lines: each is a mechanism's RDP at the report's order / that order, so their
    # sum converts (Balle et al. 2020) to dp-accounting's epsilon at that single order
    order = report.order
    total = order * math.fsum(line.rho for line in report.lines)
    closed = total + math.log1p(-1.0 / order) - math.log(delta_acc * order) / (order - 1.0)
    at_order = _compose(RdpAccountant(orders=[order]), events).get_epsilon(delta_acc)
    assert closed == pytest.approx(at_order, rel=1e-3)
    assert closed == pytest.approx(rdp, rel=0.01)
    for line, m in zip(report.lines, report.composition):
        if m.sample_rate == 1.0:  # a Gaussian's zCDP rho, 1/(2 z^2)
            assert line.rho == pytest.approx(1.0 / (2.0 * m.noise_multiplier**2), rel=1e-6)

    # and the composition is what ran: sensitivity-1 Gaussians drawn from the noise
    # source, then exactly `steps` Poisson samples at rate q with noise z * C
    gaussians = sorted(m.noise_multiplier for m in report.composition if m.sample_rate == 1.0)
    assert sorted(fit.noise.scales) == pytest.approx(gaussians, rel=1e-12)
    assert len(fit.rates) == training.steps and set(fit.rates) == {training.sample_rate}
    (std,) = fit.stds
    assert std == pytest.approx(training.noise_multiplier * report.training["max_grad_norm"])


# Known gap, reported: PRV_EPS_ERROR = 0.01 in generators/dpsgd/accounting.py is an
# absolute error band whose upper end the report states, so at epsilon <= 1 it can sit
# more than 1% above the PLD figure (conservative: a looser bound, never a privacy failure).
PRV_LOOSE = pytest.mark.xfail(
    strict=True, reason="PRV_EPS_ERROR = 0.01 is absolute: over 1% at epsilon <= 1"
)
PRV_POINTS = [
    pytest.param(*p.values, marks=PRV_LOOSE if p.values[0] <= 1.0 else (), id=p.id)
    for p in DPSGD_POINTS
    if p.values[4] == "prv"
]


@pytest.mark.parametrize(
    ("epsilon", "delta", "epochs", "batch_size", "accountant", "undeclared"), PRV_POINTS
)
def test_dpsgd_prv_epsilon_is_within_1_percent_of_pld(
    epsilon, delta, epochs, batch_size, accountant, undeclared
):
    report = fit_dpsgd(epsilon, delta, epochs, batch_size, accountant, undeclared).report
    delta_acc = delta - math.fsum(m.delta for m in report.composition)
    pld = _compose(PLDAccountant(), _events(report.composition)).get_epsilon(delta_acc)
    assert report.epsilon == pytest.approx(pld, rel=0.01)
