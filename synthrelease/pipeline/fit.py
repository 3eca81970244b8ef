"""The steps that fit and sample the DP generator.

``train`` marks the run *touched* before its first read: from then on the run is spent
whatever ends it. It reads the source once, chunk by chunk (:mod:`synthrelease.private.ingest`):
applies the out-of-domain rules row by row, splits the holdout by independent Bernoulli
coins (add/remove neighbours), writes the training codes, both parts and the checks'
bounded samples; then fits the generator (MST and AIM from the code store, chunk by
chunk) and checks the spend. A PostgreSQL source of MST or AIM is read and counted
inside the database instead (:mod:`synthrelease.private.database`): only counts and the
bounded samples leave it. ``sample`` draws the synthetic table (post-processing).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
from synthrelease.pipeline.executors import ingest_executor
from synthrelease.private import database
from synthrelease.private.ingest import ingest
from synthrelease.spec import ReleaseSpec

log = logging.getLogger(__name__)

SAMPLE_CHUNK = 1_000_000  # synthetic rows drawn and written at a time


def discretiser_of(spec: ReleaseSpec) -> Discretiser:
    """The spec's declared domain, as the train step codes it."""
    bins = int(spec.generator.params.get("bins", DEFAULT_BINS))
    declared = {n: c for n, c in spec.columns.items() if getattr(c, "declared", True)}
    return Discretiser(declared, default_bins=bins)  # undeclared: the generator's DP estimate


def train(run: PinnedRun) -> PrivacyReport:
    """Load, enforce the domain row by row, split, fit the DP generator. Returns the DP
    accounting. The run is marked *touched* before the first row is read."""

    spec, paths = run.spec, run.paths
    noise = make_noise(spec.privacy)
    generator = build_generator(  # parameters checked before any row is read
        spec.generator,
        spec.columns,
        epsilon=spec.privacy.epsilon,
        delta=spec.privacy.delta,
        target=spec.target,  # AIM's default workload (issue 4); ignored by the others
        domain_share=spec.privacy.domain_share,  # DP domains (dpsgd); ignored by the others
    )
    with _training_part(run, generator, key=_split_key(noise)) as train_part:
        log.info("training", extra={"generator": spec.generator.name, "run_id": run.run_id})
        report = generator.fit(train_part, noise=noise)
    tighten(generator.save(paths.model))
    privacy = report.to_dict()
    check_spend(privacy, epsilon=spec.privacy.epsilon, delta=spec.privacy.delta)
    _warn_on_delta(spec, generator)
    write_json(paths.root / PRIVACY_FILE, privacy)
    return report


@contextlib.contextmanager
def _training_part(run: PinnedRun, generator: Any, *, key: bytes) -> Iterator[Any]:
    """Marks the run touched, reads the source once (split, samples, the private
    ``domain.json``) and yields what the generator fits on: the rows, the code store, or
    the codes a PostgreSQL source counts where they are (:mod:`~synthrelease.private.database`;
    its session stays open while the generator counts)."""
    spec, paths = run.spec, run.paths
    discretiser = discretiser_of(spec)
    sample_rows = int(spec.gate.real_rows)
    holdout_source = spec.holdout.source
    fraction = None if holdout_source else float(spec.holdout.fraction or 0.2)
    counted = database.plan(  # the database's column types only, never a row
        spec.source,
        spec.columns,
        discretiser if generator.reads_codes else None,
        counts_only=generator.counts_only,
        fraction=fraction,
    )
    label = f"table {spec.name!r}"
    if counted is not None:
        (paths.root / TOUCHED).touch(mode=FILE_MODE)  # from here on, the run is spent
        with database.Session(counted, key=key) as session:
            codes, counts, rows = database.ingest(
                session,
                root=paths.source,
                label=label,
                columns=spec.columns,
                sample_rows=sample_rows,
                sample_paths=(paths.train, paths.holdout),
            )
            write_json(paths.root / DOMAIN_FILE, {"source": counts, "rows": {"train": rows[0]}})
            yield codes
        return
    with ingest_executor() as executor:  # set up (and checked) before any row is read
        (paths.root / TOUCHED).touch(mode=FILE_MODE)  # from here on, the run is spent
        ingested = ingest(  # one pass: domain rules, codes, facts; split, samples
            spec.source,
            spec.columns,
            root=paths.source,
            label=label,
            discretiser=discretiser if generator.reads_codes else None,
            fraction=fraction,
            sample_paths=(paths.train, None if holdout_source else paths.holdout),
            keep_rows=not generator.reads_codes,
            key=key,
            sample_rows=sample_rows,
            executor=executor,
        )
        domain: dict[str, Any] = {"source": ingested.counts, "rows": {"train": ingested.rows[0]}}
        if holdout_source is not None:
            held = ingest(
                holdout_source,
                spec.columns,
                root=paths.heldout,
                label=f"the holdout source of table {spec.name!r}",
                discretiser=None,
                fraction=None,
                sample_paths=(paths.holdout, None),
                keep_rows=False,
                key=key,
                sample_rows=sample_rows,
                executor=executor,
            )
            domain["holdout"] = held.counts
    write_json(paths.root / DOMAIN_FILE, domain)  # private: real-data counts
    yield ingested.codes if ingested.codes is not None else ingested.train.load()


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
    """Sample ``synthetic_rows`` rows from the fitted generator (post-processing),
    :data:`SAMPLE_CHUNK` rows at a time, each chunk written to the Parquet file as it
    is drawn, so memory holds one chunk however many rows the spec asks for."""

    spec, paths, run_id = run.spec, run.paths, run.run_id
    generator = load_generator(paths.model)
    rng = make_noise(spec.privacy).post_processing_rng()
    tmp = paths.synthetic.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    try:
        left = int(spec.synthetic_rows)
        while left > 0 or writer is None:
            chunk = generator.sample(min(left, SAMPLE_CHUNK), rng=rng)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
            left -= len(chunk)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(paths.synthetic)
    tighten(paths.synthetic)
    log.info("sampled", extra={"rows": spec.synthetic_rows, "run_id": run_id})
    return paths.synthetic
