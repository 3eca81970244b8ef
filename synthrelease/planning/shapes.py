"""``synthrelease plan SPEC --measure EPSILON``: the table's 1-way shapes under DP, for
the plan's stand-in.

A plan from the spec alone draws every column's 1-way shape from a prior (see
:mod:`~synthrelease.planning.standin`), and much of the error the gate measures is the
sampling error of those shapes: a column whose rows sit in one bin adds almost none, one
spread evenly over its bins adds the most. On the public tables of
``bench/bench_first_try.py`` the prior's 2-way prediction misses the measured figure by up
to 27% (docs/planning.md); with the table's own 1-way shapes in the stand-in, the plan sees
what the prior cannot.

So a custodian may buy them: every column's 1-way marginal over the spec's discretised
domain, measured with the Gaussian mechanism (:func:`generators.marginal.shapes.measure_shapes`)
and **charged to the table's ledger before any row is read**, like a release, under the
spec's name and lifetime budget. The noisy counts are DP outputs, so they are public:
they are kept in ``<workspace>/plans/shapes/<domain digest>.json`` and every later plan of
a spec with the same domain (``plan``, the summary ``run`` prints, a draft's thresholds)
uses them and says so. A spec whose domain changed (columns, bounds, categories, bins)
has another digest and falls back to the prior.

Post-processing (public): a cell below one sigma is taken as empty, the rest normalised;
the DP row count is the mean of the columns' noisy totals. A column with a parent in the
stand-in is tilted by it, so its sampled 1-way shape stays on the measured cells but is
not exactly the measured one.

Whether the measurement completed is a bit that depends on the rows (a row that cannot
be read ends it, as it ends a run): it says one fixed sentence (exit 4), like a run that
failed after reading, and is charged in full.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import traceback
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthrelease.errors import ChargedRunError, SpecError, SynthReleaseError
from synthrelease.generators.accounting import cdp_rho
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.shapes import measure_shapes
from synthrelease.ledger import open_ledger
from synthrelease.log import private_channel
from synthrelease.planning.simulate import discretiser_for
from synthrelease.private.draft_dp import draft_noise
from synthrelease.private.sources import check_columns, describe, enforced_chunks
from synthrelease.private.workspace import Workspace
from synthrelease.spec import ReleaseSpec

SHAPES_FORMAT = 1
EMPTY_BELOW_SIGMAS = 1.0  # a noisy count below this many sigmas is taken as an empty cell
MIN_EPSILON, MAX_EPSILON = 1e-4, 100.0


def domain_digest(spec: ReleaseSpec, disc: Discretiser) -> str:
    """sha256 of what the 1-way shapes are counted over: the table (name and source),
    its columns (types, bounds, categories, rules) and the generator's default bins
    (``disc``: the spec's :func:`discretiser_for`)."""
    public = spec.model_dump(mode="json", by_alias=True)
    keep = {
        "table": spec.name,
        "source": describe(spec.source),
        "columns": public["schema"]["columns"],
        "order": list(disc.names),
        "sizes": [int(s) for s in disc.sizes.values()],
        "format": SHAPES_FORMAT,
    }
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Shapes:
    """A DP measurement of every 1-way marginal of a table (public)."""

    table: str
    digest: str  # domain_digest of the spec it was measured for
    epsilon: float
    delta: float
    rho: float
    sigma: float  # noise per cell, in rows
    run_id: str  # the ledger entry that paid for it
    noise: str  # "secure"; "seeded" only in tests (NOT PRIVATE)
    counts: dict[str, list[float]]  # noisy counts (whole numbers) by column, over its codes

    @property
    def rows(self) -> int:
        """A DP row count: the mean of the columns' noisy totals (post-processing)."""
        totals = [float(np.sum(c)) for c in self.counts.values()]
        return max(int(round(float(np.mean(totals)))), 1) if totals else 1

    def marginal(self, name: str) -> np.ndarray:
        """The column's 1-way shape: cells below one sigma empty (a noisy count there
        cannot be told from an empty cell's noise), the rest normalised (uniform when no
        cell is left)."""
        counts = np.asarray(self.counts[name], dtype=float)
        kept = np.where(counts >= EMPTY_BELOW_SIGMAS * self.sigma, counts, 0.0)
        total = kept.sum()
        return kept / total if total > 0 else np.full(counts.size, 1.0 / counts.size)

    def marginals(self) -> dict[str, np.ndarray]:
        return {name: self.marginal(name) for name in self.counts}

    def describe(self) -> str:
        private = "" if self.noise == "secure" else "; NOT PRIVATE: seeded noise (tests only)"
        return (
            f"1-way shapes of '{self.table}' measured under DP (epsilon {self.epsilon:g}, "
            f"delta {self.delta:g}, ledger run {self.run_id}){private}; dependence between "
            "columns from the stand-in's prior"
        )


def shapes_path(spec: ReleaseSpec) -> Path:
    """Where the measurement for ``spec``'s table and domain is kept."""
    return _folder(spec) / f"{domain_digest(spec, discretiser_for(spec))}.json"


def _folder(spec: ReleaseSpec) -> Path:
    return Path(spec.workspace.path) / "plans" / "shapes"


def load_shapes(spec: ReleaseSpec) -> Shapes | None:
    """The DP shapes measured for ``spec``'s table and domain, or None (never measured,
    the domain changed since, a file that does not read as one, or a domain the plan
    cannot discretise)."""
    if not _folder(spec).is_dir():
        return None
    try:
        disc = discretiser_for(spec)
        digest = domain_digest(spec, disc)
        raw = json.loads((_folder(spec) / f"{digest}.json").read_text(encoding="utf-8"))
        shapes = Shapes(**raw)
        sizes = [int(s) for s in disc.sizes.values()]
        counts = [np.asarray(shapes.counts[n], dtype=float) for n in disc.names]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, SynthReleaseError):
        return None
    sound = (
        shapes.table == spec.name
        and shapes.digest == digest
        and shapes.noise in ("secure", "seeded")
        and math.isfinite(shapes.sigma)
        and shapes.sigma > 0
        and set(shapes.counts) == set(disc.names)
        and [c.size for c in counts] == sizes
        and all(np.isfinite(c).all() for c in counts)
    )
    return shapes if sound else None


def check_measure(*, epsilon: float, delta: float) -> None:
    """Refuse (before any charge) an epsilon or delta that is not a sane privacy level."""
    if not (math.isfinite(epsilon) and MIN_EPSILON <= epsilon <= MAX_EPSILON):
        raise SpecError(f"--measure needs an epsilon in [{MIN_EPSILON:g}, {MAX_EPSILON:g}]")
    if not (math.isfinite(delta) and 0 < delta < 1):
        raise SpecError("--measure needs a delta in (0, 1)")


def measure(
    spec: ReleaseSpec, *, epsilon: float, delta: float | None = None, seed: int | None = None
) -> Shapes:
    """Charge (epsilon, delta) to ``spec``'s table in its ledger, then read the rows and
        measure every 1-way marginal (see the module docstring); the result is stored for
        later plans and returned. ``delta``: by default the spec's release delta; ``seed``:
    seeded noise, for tests only (:func:`~synthrelease.private.draft_dp.draft_noise`).

        Everything that can fail without the rows is checked first (the arguments, the
        noise, the domain, the source's header, the folder, the budget). Once the rows are
        read the spend is never refunded, and a failure says one fixed sentence (exit 4, as
        a run's): its reason goes to the ledger's private reason and the run's private
        folder, and whatever the read logs or warns to that folder's log only."""
    delta = float(spec.privacy.delta) if delta is None else float(delta)
    check_measure(epsilon=float(epsilon), delta=delta)
    noise = draft_noise(seed)  # refuses a seed without the test switch
    disc = discretiser_for(spec)  # a domain the plan cannot discretise fails before a charge
    digest = domain_digest(spec, disc)
    rho = cdp_rho(epsilon=float(epsilon), delta=delta)
    path = _folder(spec) / f"{digest}.json"
    run_id = f"plan-{uuid.uuid4()}"
    ledger = open_ledger(spec)
    failure: str | None = None
    try:
        budget = spec.privacy.budget
        ledger.check(spec.name, epsilon=float(epsilon), delta=delta, budget=budget)
        check_columns(spec.source, spec.columns)  # the header only: no row is read
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise SpecError(f"{path.parent}: not writable (nothing was charged)")
        rid = ledger.reserve(
            spec.name, epsilon=float(epsilon), delta=delta, budget=budget, run_id=run_id
        )
        folder = Workspace(spec.workspace.path).ensure().run(run_id).root
        try:  # from here on the rows are read: the spend is never refunded
            with private_channel(folder):
                try:
                    chunks = enforced_chunks(spec.source, spec.columns, label=spec.name)
                    noisy, sigma, _line = measure_shapes(chunks, disc, rho=rho, noise=noise)
                except Exception as exc:  # every failure after the read stays private
                    failure = f"{type(exc).__name__}: {exc}"[:2000]
                    (folder / "failure.txt").write_text(traceback.format_exc(), encoding="utf-8")
        finally:
            ledger.mark_spent(
                rid,
                reason="plan --measure" if failure is None else "failed after reading the table",
                private_reason=failure,
            )
    finally:
        ledger.close()
    if failure is not None:
        raise ChargedRunError(
            f"the measurement of '{spec.name}' failed after reading the table: charged, "
            f"nothing measured (ledger run {run_id}; the reason is in its private folder "
            "and in the ledger's private reason)"
        )
    shapes = Shapes(
        table=spec.name,
        digest=digest,
        epsilon=float(epsilon),
        delta=delta,
        rho=float(rho),
        sigma=float(sigma),
        run_id=run_id,
        noise=noise.mode,
        counts={name: [float(x) for x in values] for name, values in noisy.items()},
    )
    partial = path.with_suffix(f".{run_id}.part")
    partial.write_text(json.dumps(asdict(shapes), sort_keys=True), encoding="utf-8")
    os.replace(partial, path)  # a reader never sees half a file
    return shapes
