"""Accounting for the DP-SGD generator: the budget plan, noise calibration and its report.

Pure functions over public numbers; reads no data. Every mechanism of a ``dpsgd`` fit is
a Gaussian mechanism, so the whole fit is one composition in opacus' history format,
``(noise_multiplier, sample_rate, steps)``:

- the DP row count and each DP domain histogram: ``(sigma / sensitivity, 1.0, 1)``;
- DP-SGD training: ``(noise_multiplier, q, steps)`` with Poisson sampling at rate ``q``.

``epsilon_of(history, delta=, accountant=)`` composes it with opacus' RDP accountant
(default; Mironov 2017, Balle et al. 2020 conversion) or its PRV accountant (Gopi et al.
2021, upper end of its error band). Anyone can recompute a report's epsilon from its
``composition`` and ``delta_accountant`` with either accountant.

The budget plan is plain arithmetic (:func:`plan_budget`): with
``rho_ref = cdp_rho(epsilon, delta_accountant)`` the zCDP equivalent of the target, the
row count gets ``count_share * rho_ref`` and undeclared domains ``domain_share * rho_ref``
(the same meaning of "share" as in zCDP generators); DP-SGD gets the rest, by calibrating
its noise multiplier so that the composition of everything is epsilon at that delta.
Category discovery (thresholded histogram over an unbounded value set) also spends a
small delta each, taken out of ``delta`` before the accountant sees it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine, PrivacyReport, cdp_rho

History = Sequence[tuple[float, float, int]]
ACCOUNTANTS = ("rdp", "prv")
ACCOUNTANT_NAMES = {
    "rdp": "RDP (opacus 1.6 RDPAccountant; Balle et al. 2020 conversion)",
    "prv": "PRV (opacus 1.6 PRVAccountant, upper bound at eps_error 0.01)",
}
# opacus' default orders plus a few larger ones (only ever tightens the bound).
ALPHAS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 256, 512, 1024]
)
PRV_EPS_ERROR = 0.01


# --------------------------------------------------------------------------- composition
def _rdp_curves(history: History) -> list[list[float]]:
    from opacus.accountants.analysis.rdp import compute_rdp  # opacus (torch): on first use

    return [
        list(compute_rdp(q=q, noise_multiplier=z, steps=int(t), orders=list(ALPHAS)))
        for z, q, t in history
    ]


def rdp_epsilon(history: History, *, delta: float) -> tuple[float, float, list[float]]:
    """(epsilon, optimal order, each entry's RDP at that order) under the RDP accountant."""
    from opacus.accountants.analysis.rdp import get_privacy_spent  # opacus: on first use

    if not history:
        return 0.0, float("nan"), []
    curves = _rdp_curves(history)
    total = [math.fsum(c[i] for c in curves) for i in range(len(ALPHAS))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": still valid
        eps, order = get_privacy_spent(orders=list(ALPHAS), rdp=total, delta=delta)
    idx = (
        ALPHAS.index(float(order))
        if float(order) in ALPHAS
        else int(min(range(len(ALPHAS)), key=lambda i: abs(ALPHAS[i] - float(order))))
    )
    return float(eps), float(order), [c[idx] for c in curves]


def epsilon_of(history: History, *, delta: float, accountant: str = "rdp") -> float:
    """Epsilon at ``delta`` of the composition ``history`` (opacus history format)."""
    if accountant not in ACCOUNTANTS:
        raise GeneratorError(f"unknown accountant {accountant!r}; use one of {ACCOUNTANTS}")
    if not history:
        return 0.0
    if accountant == "rdp":
        return rdp_epsilon(history, delta=delta)[0]
    from opacus.accountants import PRVAccountant  # opacus (torch): on first use

    acc = PRVAccountant()
    acc.history = [(float(z), float(q), int(t)) for z, q, t in history]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log(0) at sample rate 1: handled by opacus
        return float(acc.get_epsilon(delta=delta, eps_error=PRV_EPS_ERROR))


def calibrate_noise(
    *,
    prior: History,
    sample_rate: float,
    steps: int,
    epsilon: float,
    delta: float,
    accountant: str = "rdp",
    max_noise: float = 20.0,
    tolerance: float = 1e-3,
) -> float:
    """Smallest noise multiplier (to ``tolerance`` relative) such that ``prior`` plus
    ``steps`` DP-SGD steps at ``sample_rate`` stay within (epsilon, delta).

    Raises :class:`GeneratorError` when even ``max_noise`` would not do: the budget is
    unreachable for these settings, and the message says what to change.
    """

    def eps(z: float) -> float:
        try:
            return epsilon_of(
                list(prior) + [(z, sample_rate, steps)], delta=delta, accountant=accountant
            )
        except (MemoryError, ValueError, OverflowError):  # PRV far out of its range: too
            return math.inf  # little noise, certainly over budget (conservative)

    if epsilon_of(prior, delta=delta, accountant=accountant) >= epsilon or eps(max_noise) > epsilon:
        raise GeneratorError(
            f"dpsgd: epsilon {epsilon:g} is unreachable with {steps} steps at sample rate "
            f"{sample_rate:.3g}: it would need a noise multiplier above {max_noise:g} "
            "(the model would learn nothing). Use fewer 'epochs', a smaller 'batch_size', "
            "a larger epsilon, or raise 'max_noise_multiplier'"
        )
    lo, hi = 0.05, max_noise
    if accountant != "rdp":  # PRV is tighter than RDP: the RDP answer brackets it from above
        hi = calibrate_noise(
            prior=prior,
            sample_rate=sample_rate,
            steps=steps,
            epsilon=epsilon,
            delta=delta,
            accountant="rdp",
            max_noise=max_noise,
            tolerance=tolerance,
        )
        lo = max(lo, 0.7 * hi)
    if eps(lo) <= epsilon:
        return lo
    while hi / lo > 1 + tolerance:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if eps(mid) <= epsilon else (mid, hi)
    return hi


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class BudgetPlan:
    """How one fit splits (epsilon, delta). All fields are public numbers."""

    epsilon: float
    delta: float
    delta_accountant: float  # what the accountant gets; the rest pays category thresholds
    rho_ref: float
    rho_count: float
    rho_per_domain: float  # each undeclared column's histogram
    delta_per_category: float  # each undeclared categorical column's threshold


def plan_budget(
    *,
    epsilon: float,
    delta: float,
    count_share: float,
    domain_share: float,
    numeric_undeclared: int,
    categorical_undeclared: int,
) -> BudgetPlan:
    """The split of a fit's budget (see the module docstring)."""
    undeclared = numeric_undeclared + categorical_undeclared
    if undeclared and domain_share <= 0:
        raise GeneratorError(
            f"dpsgd: {undeclared} column(s) have an undeclared domain but no budget share "
            "was given to estimate them; declare the bounds/categories or set "
            "privacy.domain_share"
        )
    share = domain_share if undeclared else 0.0
    if count_share + share >= 0.5:
        raise GeneratorError("dpsgd: count_share + domain_share must stay below 0.5")
    delta_cat = (share * delta / categorical_undeclared) if categorical_undeclared else 0.0
    delta_acc = delta - delta_cat * categorical_undeclared
    rho_ref = cdp_rho(epsilon=epsilon, delta=delta_acc)
    return BudgetPlan(
        epsilon=epsilon,
        delta=delta,
        delta_accountant=delta_acc,
        rho_ref=rho_ref,
        rho_count=count_share * rho_ref,
        rho_per_domain=(share * rho_ref / undeclared) if undeclared else 0.0,
        delta_per_category=delta_cat,
    )


def gaussian_entry(rho: float) -> tuple[float, float, int]:
    """A Gaussian mechanism of zCDP ``rho`` (sensitivity 1) in opacus' history format."""
    return (math.sqrt(1.0 / (2.0 * rho)), 1.0, 1)


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class Mechanism:
    """One entry of the composition, in opacus' history format plus its meaning."""

    step: str
    mechanism: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float = 0.0  # extra delta outside the accountant (category thresholds)

    def entry(self) -> tuple[float, float, int]:
        return (self.noise_multiplier, self.sample_rate, self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "mechanism": self.mechanism,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
            "delta": self.delta,
        }


@dataclass(frozen=True)
class DPSGDReport(PrivacyReport):
    """A :class:`PrivacyReport` whose epsilon comes from composing ``composition``.

    Here ``lines[i].rho`` is mechanism i's Renyi divergence at the order ``order`` that
    gives the RDP bound, divided by that order: exactly its zCDP rho for a Gaussian step
    (sample rate 1), and the additive share of the RDP bound for DP-SGD. So the lines
    still sum to ``rho`` and show the split, but ``epsilon`` is the accountant's (it is not
    ``cdp_eps(rho)``); ``training`` and ``composition`` let anyone recompute it.
    """

    order: float = float("nan")
    composition: tuple[Mechanism, ...] = ()
    training: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        mechanisms: Iterable[Mechanism],
        *,
        delta: float,
        accountant: str,
        training: Mapping[str, Any],
    ) -> DPSGDReport:
        mechanisms = tuple(mechanisms)
        extra_delta = math.fsum(m.delta for m in mechanisms)
        delta_acc = delta - extra_delta
        history = [m.entry() for m in mechanisms]
        eps_rdp, order, parts = rdp_epsilon(history, delta=delta_acc)
        eps = (
            eps_rdp
            if accountant == "rdp"
            else epsilon_of(history, delta=delta_acc, accountant=accountant)
        )
        lines = tuple(BudgetLine(m.step, r / order, m.mechanism) for m, r in zip(mechanisms, parts))
        info = dict(training, delta_accountant=delta_acc, epsilon_rdp=eps_rdp)
        return cls(
            epsilon=eps,
            delta=delta,
            rho=math.fsum(line.rho for line in lines),
            lines=lines,
            accountant=ACCOUNTANT_NAMES[accountant],
            order=order,
            composition=mechanisms,
            training=info,
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["rdp_order"] = self.order
        out["composition"] = [m.to_dict() for m in self.composition]
        out["training"] = dict(self.training)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DPSGDReport:
        base = PrivacyReport.from_dict(raw)
        return cls(
            epsilon=base.epsilon,
            delta=base.delta,
            rho=base.rho,
            lines=base.lines,
            accountant=base.accountant,
            order=float(raw.get("rdp_order", float("nan"))),
            composition=tuple(Mechanism(**m) for m in raw.get("composition", [])),
            training=dict(raw.get("training", {})),
        )
