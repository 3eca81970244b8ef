"""AIM (McKenna et al., VLDB 2022) over the declared, discretised domain.

The recipe (budget arithmetic in :class:`~synthrelease.generators.marginal.aim_mechanism.Plan`):

0. optionally, DP quantile bin edges for the columns in ``quantile_edges`` (a share
   ``quantile_share`` of rho, one budget line; :mod:`~synthrelease.generators.dp_edges`);
1. measure every 1-way marginal with Gaussian noise at the first round's sigma; cells
   below ``compress_threshold`` sigma merge into one cell per column (domain compression);
2. adaptive rounds: choose the worst-approximated workload candidate that keeps the
   junction tree under ``max_model_size`` x (budget used / budget) with the exponential
   mechanism, measure it with Gaussian noise, re-estimate the model (warm-started mirror
   descent, ``iters`` steps), anneal when the model stops moving;
3. a final estimation (``final_iters`` steps) gives the released graphical model.

Every step is a line of the privacy report; the lines sum to the requested budget.

**Sensitive rows**: only :func:`~synthrelease.generators.marginal.data.encode_rows` reads
them (inside :meth:`AIMGenerator.fit`); exact counts stay in an ``ExactMarginals`` that is
dropped after the last measurement. Sampling is post-processing with the caller's rng.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import BudgetLine, PrivacyReport, cdp_rho
from synthrelease.generators.marginal.aim_mechanism import Plan, run_rounds
from synthrelease.generators.marginal.aim_workload import WorkloadQuery, candidates, resolve
from synthrelease.generators.marginal.base import MarginalGenerator, MarginalParams, NoisyMarginal
from synthrelease.generators.marginal.compress import compress_map
from synthrelease.generators.marginal.data import ExactMarginals, encode_rows
from synthrelease.generators.marginal.estimation import Measurement, estimate
from synthrelease.generators.marginal.jtree_sampler import GraphicalModel
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CountedCodes, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.aim")  # private workspace only


class AIMParams(MarginalParams):
    target: str | None = Field(
        default=None,
        description="column of interest: the default "
        "workload adds every 3-way marginal containing it",
    )
    workload: tuple[WorkloadQuery, ...] | None = Field(
        default=None,
        description="[{columns: [...], weight: w}, ...]; default: all 2-way "
        "marginals plus the 3-way marginals containing the target",
    )
    max_model_size: float = Field(
        default=80.0, gt=0, le=4096, description="junction-tree size cap in MB (float64)"
    )
    rounds: int | None = Field(
        default=None, ge=1, le=100_000, description="planned rounds T (default 16 x columns)"
    )
    measure_share: float = Field(
        default=0.9, gt=0, lt=1, description="share of each round's budget spent measuring"
    )
    iters: int = Field(default=100, ge=1, le=100_000, description="estimation steps per round")
    final_iters: int = Field(default=500, ge=1, le=100_000, description="final estimation steps")
    tol: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="stop an estimation early "
        "when 50 steps lower its loss by less than tol x the loss",
    )
    compress: bool = Field(default=True, description="merge 1-way cells below the threshold")
    compress_threshold: float = Field(
        default=2.0, ge=0, le=10, description="merge threshold, in noise sigmas"
    )
    max_rounds: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="round "
        "max_rounds is the last (it spends what is left): bounds "
        "the run time; a public count, never a clock, so that the "
        "stopping rule depends on no data",
    )


class AIMGenerator(MarginalGenerator):
    """AIM over the declared, discretised domain. See the module docstring."""

    name = "aim"
    Params = AIMParams
    params: AIMParams
    model_class = GraphicalModel
    uses_target = True
    # the final estimation runs after the last measurement; the audit reads the measurements
    audit_params = {"final_iters": 1}

    def __init__(
        self,
        columns: Mapping[str, Column],
        *,
        epsilon: float,
        delta: float,
        params: Mapping[str, Any] | None = None,
        target: str | None = None,
    ) -> None:
        params = dict(params or {})
        if target is not None and params.get("target") is None:
            params["target"] = target
        super().__init__(columns, epsilon=epsilon, delta=delta, params=params)
        p = self.params
        self._init_domain()
        self.workload = resolve(list(self.columns), workload=p.workload, target=p.target)
        self._check_plan()
        self.model: GraphicalModel | None = None

    def _check_plan(self) -> None:
        """Refuse, before any row is read, parameters that could only fail during the fit.

        - The 1-way step costs ``measure_share * d / rounds`` of the budget (``d``
          columns); it must leave some for the rounds, i.e. ``rounds > measure_share * d``
          (by at least 1e-6), or the plan overspends and the rounds crash.
        - Every 1-way marginal is in the final junction tree, so the declared 1-way cells
          (an upper bound of the compressed ones) must fit in ``max_model_size``.
        """
        p = self.params
        d = len(self.discretiser.names)
        need = math.floor(p.measure_share * d + 1e-6) + 1  # rounds > share * d, with room
        if p.rounds is not None and p.rounds < need:
            raise GeneratorError(
                f"aim: 'rounds' must be at least {need} for {d} columns at measure_share "
                f"{p.measure_share:g} (the 1-way marginals alone cost measure_share x columns "
                "/ rounds of the budget and must leave some for the rounds); raise 'rounds' or "
                "leave it unset (16 x columns)"
            )
        cells = sum(self.discretiser.sizes.values())
        if cells > p.max_model_size * 2**17:
            raise GeneratorError(
                f"aim: 'max_model_size' ({p.max_model_size:g} MB) cannot hold the declared "
                f"1-way marginals ({cells} cells); raise 'max_model_size' to at least "
                f"{cells / 2**17:.3g}"
            )

    # ------------------------------------------------------------------ fit
    def fit(
        self, table: SensitiveTable | SensitiveCodes | CountedCodes, *, noise: NoiseSource
    ) -> PrivacyReport:
        """READS SENSITIVE ROWS (via ``encode_rows``); spends exactly
        cdp_rho(epsilon, delta) with noise from ``noise``; never calls ``len(table)``."""
        self._check_fit_args(table, noise)
        start = time.perf_counter()
        p = self.params
        rho = cdp_rho(epsilon=self.epsilon, delta=self.delta)
        lines: list[BudgetLine] = []
        if p.quantile_edges:
            line = self._learn_edges(table, rho=rho * p.quantile_share, noise=noise)
            lines.append(line)
            rho -= line.rho
        disc = self.discretiser
        names = disc.names
        sizes = list(disc.sizes.values())
        d = len(sizes)
        read = time.perf_counter()
        data = ExactMarginals(encode_rows(table, disc), sizes)
        read = time.perf_counter() - read
        plan = Plan(rho, p.rounds or 16 * d, share=p.measure_share)
        sigma = plan.sigma
        y1 = [data.counts((i,)) + noise.normal(sigma, s) for i, s in enumerate(sizes)]
        lines.append(BudgetLine("1-way marginals", plan.charge(d / (2 * sigma**2)), "Gaussian"))
        totals = [(float(y.sum()), sigma**2 * y.size) for y in y1]
        maps = [
            compress_map(y, p.compress_threshold * sigma)
            if p.compress
            else np.arange(y.size, dtype=np.int64)
            for y in y1
        ]
        data = data.compressed(maps)
        first = []
        for i, (m, y) in enumerate(zip(maps, y1)):
            k = np.bincount(m)
            w = None if (k == 1).all() else 1.0 / np.sqrt(k)
            cy = np.bincount(m, weights=y, minlength=k.size)
            first.append(Measurement((i,), cy if w is None else cy * w, sigma, w))
        logger.info("aim: 1-way measured; compressed domain %s -> %s", sizes, list(data.sizes))

        max_cells = p.max_model_size * 2**17  # MB of float64
        every = candidates(self.workload)
        cands = {c: w for c, w in every.items() if math.prod(data.sizes[a] for a in c) <= max_cells}
        if len(cands) < len(every):  # public: sizes come from the DP-compressed domain
            logger.warning(
                "aim: %d of %d workload candidates exceed max_model_size and are never measured",
                len(every) - len(cands),
                len(every),
            )
        data.prefetch([(i,) for i in range(d)] + list(cands))  # one pass over the rows
        outcome = run_rounds(
            data,
            first,
            totals,
            plan=plan,
            cands=cands,
            max_cells=max_cells,
            iters=p.iters,
            tol=p.tol,
            noise=noise,
            name=lambda c: " x ".join(names[a] for a in c),
            max_rounds=p.max_rounds,
        )
        # profiling only, never logged (rows_s scales with the row count): reading and
        # counting rows, the rounds' selection + measurement, their estimations, the final one
        self.timings = {"rows_s": read + data.seconds, **outcome.seconds}
        data.release()  # nothing below reads rows or exact counts
        self.measured = tuple(
            NoisyMarginal((i,), (np.arange(s),), y, sigma)
            for i, (s, y) in enumerate(zip(sizes, y1))
        ) + tuple(
            NoisyMarginal(m.clique, tuple(maps[a] for a in m.clique), m.y, m.sigma)
            for m in outcome.measurements[d:]
        )
        lines += outcome.lines
        clock = time.perf_counter()
        fit = estimate(
            data.sizes,
            outcome.measurements,
            total=outcome.total,
            iters=p.final_iters,
            warm=outcome.fit,
            tol=p.tol,
        )
        self.timings["final_s"] = time.perf_counter() - clock
        if fit.calibrator.tree.total_cells > max_cells:  # the candidate filter prevents it
            raise GeneratorError("aim: the model outgrew max_model_size (bug)")
        self.model = GraphicalModel.from_beliefs(
            fit.beliefs, maps, [m.clique for m in outcome.measurements], fit.total
        )
        report = PrivacyReport.from_lines(
            lines,
            delta=self.delta,
            settings={
                "params": p.model_dump(mode="json"),
                "workload": [
                    {"columns": [names[a] for a in c], "weight": w}
                    for c, w in self.workload.items()
                ],
                "planned_rounds": plan.rounds,
                "rounds": sum(1 for line in outcome.lines if line.step.endswith("select")),
                "compressed_sizes": dict(zip(names, map(int, data.sizes))),  # DP output
                "candidates_over_max_model_size": len(every) - len(cands),
                "model_cells": int(fit.calibrator.tree.total_cells),
            },
        )
        self.report = report
        self.timings["total_s"] = time.perf_counter() - start
        logger.info(
            "aim: fitted, %d rounds, junction tree %d cells, epsilon %.4g",
            len(outcome.lines) // 2,
            fit.calibrator.tree.total_cells,
            report.epsilon,
        )
        # the run time grows with the (exact) row count: not DP, private log only
        private_logger.info("aim: fitted in %.1f s", time.perf_counter() - start)
        return report
