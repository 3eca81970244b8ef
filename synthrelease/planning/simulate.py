"""The plan's simulation: the spec's own generator, fitted on a public stand-in table.

One fit of the spec's generator (same parameters, domain, epsilon and delta) on rows
drawn from :func:`~synthrelease.planning.standin.stand_in`, then the figures the gate
will compute (the 1-, 2- and 3-way TVDs against a holdout-sized sample, the SDMetrics
scores), and two references: the *floor* (an independent sample of the stand-in in place
of the synthetic table: the holdout's and the synthetic sample's own sampling error, which
no epsilon removes) and the error against the stand-in's *truth* (a large sample).

Noise is seeded (:meth:`NoiseSource.seeded`): the stand-in is public, nothing here is
private, and a plan should not change from one call to the next. Tables with more
training rows than :data:`MAX_SIM_ROWS` are simulated on that many rows at the zCDP
budget that gives every measurement the same noise *relative to the row count*
(``rho x (rows / simulated rows)^2``), for the marginal generators; the budget lines
reported are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.generators import build_generator
from synthrelease.generators.accounting import BudgetLine, cdp_eps, cdp_rho
from synthrelease.generators.base import quiet_fits
from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
from synthrelease.generators.noise import NoiseSource
from synthrelease.planning.standin import StandIn, stand_in
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import ReleaseSpec
from synthrelease.validators.features import typed_frame
from synthrelease.validators.samples import Settings
from synthrelease.validators.sdmetrics_reports import sdmetrics_figures
from synthrelease.validators.utility import marginal_tvd, sampled_workload

MAX_SIM_ROWS = 50_000
TRUTH_ROWS = 200_000
MAX_SDMETRICS_COLUMNS = 30  # SDMetrics' pair trends grow with the square of the columns
MARGINAL_GENERATORS = ("mst", "aim")
STANDINS = 3  # stand-ins a marginal generator's plan averages (one: +-12% on 2-way TVD)


@dataclass(frozen=True)
class Simulation:
    """Figures of one simulated release (all computed on public stand-in rows)."""

    epsilon: float  # the release's epsilon
    simulated_epsilon: float  # what the simulation ran at (differs above MAX_SIM_ROWS)
    simulated_rows: int
    predicted: dict[str, float]  # what the gate will see: tvd_*way vs the holdout, scores
    floor: dict[str, float]  # sampling error alone (stand-in sample vs holdout)
    truth: dict[str, float]  # synthetic vs the stand-in's distribution
    lines: tuple[BudgetLine, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0


def standins_for(spec: ReleaseSpec) -> int:
    """How many stand-ins the plan fits: :data:`STANDINS` for the marginal generators;
    one for DP-SGD, whose fit costs minutes on a CPU."""
    return STANDINS if spec.generator.name in MARGINAL_GENERATORS else 1


def mean_simulation(sims: list[Simulation]) -> Simulation:
    """The figures of several stand-ins' simulations averaged (a plan is an expectation
    over the stand-in's prior, and one draw of it moves a 2-way TVD by about 12%); the
    budget lines and settings of the first, the fit seconds summed."""
    first = sims[0]

    def mean(part: str) -> dict[str, float]:
        figures: list[dict[str, float]] = [getattr(s, part) for s in sims]
        shared = set(figures[0]).intersection(*figures[1:])
        return {k: float(np.mean([f[k] for f in figures])) for k in figures[0] if k in shared}

    return Simulation(
        epsilon=first.epsilon,
        simulated_epsilon=first.simulated_epsilon,
        simulated_rows=first.simulated_rows,
        predicted=mean("predicted"),
        floor=mean("floor"),
        truth=mean("truth"),
        lines=first.lines,
        settings=first.settings,
        fit_seconds=float(sum(s.fit_seconds for s in sims)),
    )


def discretiser_for(spec: ReleaseSpec) -> Discretiser:
    """The domain the spec's generator and the TVD checks work on."""
    bins = spec.generator.params.get("bins", DEFAULT_BINS)
    return Discretiser(spec.columns, default_bins=int(bins))


def _tvds(
    a: pd.DataFrame, b: pd.DataFrame, sizes: dict[str, int], triples: list[tuple[str, ...]]
) -> dict[str, float]:
    one = marginal_tvd(a, b, sizes, way=1)
    two = marginal_tvd(a, b, sizes, way=2) if len(sizes) > 1 else one
    way = min(3, len(sizes))
    three = marginal_tvd(a, b, sizes, way=way, workload=triples)
    return {"tvd_1way": one, "tvd_2way": two, "tvd_3way": three}


def _triples(
    sizes: dict[str, int], settings: Settings, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    way = min(3, len(sizes))
    return sampled_workload(sizes, way=way, max_marginals=settings.max_marginals, rng=rng)


def simulate(
    spec: ReleaseSpec,
    *,
    train_rows: int,
    holdout_rows: int,
    seed: int,
    shapes: Mapping[str, np.ndarray] | None = None,
) -> Simulation:
    """Fit the spec's generator on a stand-in of ``train_rows`` rows; see the module
    docstring. ``shapes``: measured 1-way marginals for the stand-in (public, DP)."""
    settings = Settings.from_gate(spec.gate)
    discretiser = discretiser_for(spec)
    model: StandIn = stand_in(discretiser, seed=seed, shapes=shapes)
    rng = np.random.default_rng(seed)
    sim_rows = max(min(int(train_rows), MAX_SIM_ROWS), 10)
    eps = float(spec.privacy.epsilon)
    delta = float(spec.privacy.delta)
    sim_eps = eps
    scale = 1.0
    if sim_rows < train_rows and spec.generator.name in MARGINAL_GENERATORS:
        scale = (train_rows / sim_rows) ** 2
        sim_eps = cdp_eps(rho=cdp_rho(epsilon=eps, delta=delta) * scale, delta=delta)
    generator = build_generator(
        spec.generator,
        spec.columns,
        epsilon=sim_eps,
        delta=delta,
        domain_share=spec.privacy.domain_share,
        target=spec.target,
    )
    train = discretiser.decode(model.codes(sim_rows, rng), rng)
    start = time.perf_counter()
    with quiet_fits():  # their progress lines would read like a real run's
        stand = SensitiveTable(train, label="stand-in")
        report = generator.fit(stand, noise=NoiseSource.seeded(seed))
    fit_seconds = time.perf_counter() - start
    synthetic = generator.sample(int(spec.synthetic_rows), rng=rng)

    sizes = discretiser.sizes
    triples = _triples(sizes, settings, rng)
    synth_m = discretiser.encode(synthetic.iloc[: settings.marginal_rows])
    hold_codes = model.codes(min(int(holdout_rows), settings.marginal_rows), rng)
    predicted = _tvds(synth_m, hold_codes, sizes, triples)
    floor = _tvds(model.codes(len(synth_m), rng), hold_codes, sizes, triples)
    truth = _tvds(synth_m, model.codes(TRUTH_ROWS, rng), sizes, triples)
    if len(sizes) <= MAX_SDMETRICS_COLUMNS:
        rows = settings.sample_rows
        specs = dict(spec.columns)
        holdout = discretiser.decode(hold_codes.iloc[:rows], rng)
        scores, _ = sdmetrics_figures(
            real=typed_frame(holdout, specs),
            synthetic=typed_frame(synthetic.iloc[:rows], specs),
            specs=specs,
        )
        predicted.update(
            {k: float(scores[k]) for k in ("quality_score", "diagnostic_score") if k in scores}
        )
    lines = tuple(BudgetLine(x.step, x.rho / scale, x.mechanism) for x in report.lines)
    return Simulation(
        epsilon=eps,
        simulated_epsilon=sim_eps,
        simulated_rows=sim_rows,
        predicted=predicted,
        floor=floor,
        truth=truth,
        lines=lines,
        settings=dict(report.settings),
        fit_seconds=fit_seconds,
    )
