"""The steps that fit and sample the DP generator.

``train`` marks the run *touched* before its first read: from then on the run is spent
whatever ends it. It loads the rows, applies the out-of-domain rules row by row, splits
the holdout by independent Bernoulli coins (add/remove neighbours), fits the generator
and checks the spend. ``sample`` draws the synthetic table (post-processing).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from synthrelease.generators import build_generator, load_generator
from synthrelease.generators.accounting import PrivacyReport
from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
from synthrelease.generators.noise import make_noise
from synthrelease.owner_only import FILE_MODE, tighten
from synthrelease.pipeline.admission import check_spend
from synthrelease.pipeline.context import (
    DOMAIN_FILE,
    PRIVACY_FILE,
    TOUCHED,
    PinnedRun,
    write_json,
)
from synthrelease.private.sources import (
    check_domain,
    enforce_domain,
    load_table,
    require_rows,
)
from synthrelease.private.table import SensitiveTable
from synthrelease.private.workspace import Workspace, split_table
from synthrelease.spec import ReleaseSpec

log = logging.getLogger(__name__)


def _discretiser(spec: ReleaseSpec) -> Discretiser:

    bins = int(spec.generator.params.get("bins", DEFAULT_BINS))
    declared = {n: c for n, c in spec.columns.items() if getattr(c, "declared", True)}
    return Discretiser(declared, default_bins=bins)  # undeclared: the generator's DP estimate


def train(run: PinnedRun) -> PrivacyReport:
    """Load, enforce the domain row by row, split, fit the DP generator. Returns the DP
    accounting. The run is marked *touched* before the first row is read."""

    spec, paths = run.spec, run.paths
    ws = Workspace(spec.workspace.path)
    noise = make_noise(spec.privacy)
    discretiser = _discretiser(spec)
    generator = build_generator(  # parameters checked before any row is read
        spec.generator,
        spec.columns,
        epsilon=spec.privacy.epsilon,
        delta=spec.privacy.delta,
        target=spec.target,  # AIM's default workload (issue 4); ignored by the others
        domain_share=spec.privacy.domain_share,  # DP domains (dpsgd); ignored by the others
    )
    (paths.root / TOUCHED).touch(mode=FILE_MODE)  # from here on, the run is spent

    def prepared(
        source: Any, label: str, what: str
    ) -> tuple[SensitiveTable, dict[str, dict[str, int]]]:
        table, counts = enforce_domain(load_table(source, spec.columns, label=label), spec.columns)
        check_domain(table, discretiser)  # guard: every row now encodes
        require_rows(table, what=what)
        return table, counts

    table, counts = prepared(spec.source, spec.name, f"table {spec.name!r}")
    domain = {"source": counts}
    if spec.holdout.source is not None:
        holdout, domain["holdout"] = prepared(
            spec.holdout.source, f"{spec.name}:holdout", "the holdout source"
        )
        train_part = table
    else:
        train_part, holdout = split_table(
            table, fraction=float(spec.holdout.fraction or 0.2), key=_split_key(noise)
        )
        require_rows(holdout, what=f"the holdout part of table {spec.name!r}")
        require_rows(train_part, what=f"the training part of table {spec.name!r}")
    write_json(paths.root / DOMAIN_FILE, domain)  # private: real-data counts
    ws.save_table(train_part, paths.train)
    ws.save_table(holdout, paths.holdout)
    log.info("training", extra={"generator": spec.generator.name, "run_id": run.run_id})
    report = generator.fit(train_part, noise=noise)
    tighten(generator.save(paths.model))
    privacy = report.to_dict()
    check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
    _warn_on_delta(spec, generator)
    write_json(paths.root / PRIVACY_FILE, privacy)
    return report


def _split_key(noise: Any) -> bytes:
    """128 bits for the holdout coins: from the OS CSPRNG, or (tests) the seeded stream."""
    return os.urandom(16) if noise.is_secure else noise.post_processing_rng().bytes(16)


def _warn_on_delta(spec: ReleaseSpec, generator: Any) -> None:
    """delta should be well below 1/n; n is private, so compare with the generator's own
    DP estimate of it (post-processing: no extra budget)."""
    estimate = getattr(generator, "estimated_rows", None)
    if estimate and spec.privacy.delta * float(estimate) > 0.1:
        log.warning(
            "privacy.delta is not well below 1/n for this table (n estimated with DP); "
            "choose delta <= 1/(10 n)",
            extra={"dataset": spec.name, "delta": spec.privacy.delta},
        )


def sample(run: PinnedRun) -> Path:
    """Sample ``synthetic_rows`` rows from the fitted generator (post-processing)."""

    spec, paths, run_id = run.spec, run.paths, run.run_id
    generator = load_generator(paths.model)
    rng = make_noise(spec.privacy).post_processing_rng()
    synthetic = generator.sample(spec.synthetic_rows, rng=rng)
    synthetic.to_parquet(paths.synthetic, index=False)
    tighten(paths.synthetic)
    log.info("sampled", extra={"rows": spec.synthetic_rows, "run_id": run_id})
    return paths.synthetic
