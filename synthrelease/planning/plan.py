"""``synthrelease plan SPEC``: what a release will look like, before any row is read.

From the spec and a row count that is public (``expected_rows``, declared by the
custodian, rounded by a plain draft, or a DP count from ``spec draft --dp``; or
``--rows``), and, where the custodian bought them with ``plan --measure``, the table's
1-way shapes measured under DP (:mod:`~synthrelease.planning.shapes`):

- the **budget lines** the generator will charge, and the **noise scale** of each
  Gaussian measurement, absolute and relative to the row count (sigma / rows);
- the **expected 1-, 2- and 3-way error** the gate will measure (synthetic vs holdout),
  with its two parts: the sampling floor (the holdout's and the synthetic sample's own
  sampling error, which no epsilon removes) and the error against the truth;
- for each utility check of the gate, whether it is **likely to pass**, and where it is
  not, the epsilon (from ``figure = floor + b / epsilon``, fitted on the simulation) or
  the bins at which it would.

The figures come from :func:`~synthrelease.planning.simulate.simulate`: the spec's own
generator fitted on a public stand-in table (:mod:`~synthrelease.planning.standin`).
They are predictions: the stand-in cannot know the real table's structure. The TSTR
check depends on how the target relates to the other columns in the real rows, which no
public fact tells: the plan reports it as not predicted and never refuses because of it.

A plan is public (a function of the spec only) and cached in the workspace under
``plans/`` by the sha256 of everything it depends on, so ``run`` reuses what ``plan`` (or
``spec draft``) computed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

from synthrelease.errors import SpecError
from synthrelease.generators.accounting import BudgetLine
from synthrelease.planning.choices import THRESHOLD_MARGIN
from synthrelease.planning.model import PLAN_FORMAT, Forecast, Noise, Outlook, Plan
from synthrelease.planning.shapes import Shapes
from synthrelease.planning.simulate import Simulation, mean_simulation, simulate, standins_for
from synthrelease.spec import ReleaseSpec
from synthrelease.validators.checks import thresholds

LIKELY = 0.9  # predicted at or below 0.9 x threshold (max checks): likely to pass
UNLIKELY = 1.25  # above 1.25 x threshold: the gate cannot be expected to pass
SCORE_MARGIN = 0.05  # scores (min checks): likely this far above the threshold
DEFAULT_SOURCE_HOLDOUT_SHARE = 0.5  # a holdout source's size, as a share of the rows


def _sigma(line: BudgetLine, columns: int, edges: int) -> float | None:
    """The per-cell noise of a Gaussian budget line (rho = count / (2 sigma^2))."""
    if not line.mechanism.startswith("Gaussian") or line.rho <= 0:
        return None
    if line.step == "1-way marginals":
        count = columns
    elif line.step == "2-way marginals":
        count = edges
    elif line.step.startswith("DP quantile edges"):
        return None
    else:
        count = 1
    return math.sqrt(count / (2.0 * line.rho))


# --------------------------------------------------------------------------- inputs
def check_rows(rows: int) -> int:
    """A row count given with ``--rows``: a positive integer."""
    if rows < 1:
        raise SpecError("--rows must be a positive row count")
    return int(rows)


def _rows(spec: ReleaseSpec, rows: int | None, shapes: Shapes | None) -> tuple[int, str]:
    if rows is not None:
        return check_rows(rows), "given with --rows"
    if spec.expected_rows is None and shapes is not None:
        return shapes.rows, "a DP count (plan --measure)"
    if spec.expected_rows is None:
        raise SpecError(
            "the plan needs the table's row count: declare `expected_rows` in the spec or "
            "give --rows N (a public figure: the custodian's, or a DP count)"
        )
    where = spec.provenance.expected_rows
    label = {"drafted": "drafted from the rows, NOT DP", "dp": "a DP count"}.get(where, where)
    return int(spec.expected_rows), label


def _parts(spec: ReleaseSpec, rows: int, holdout_rows: int | None) -> tuple[int, int, bool]:
    """(training rows, holdout rows, whether the holdout size was assumed)."""
    if spec.holdout.source is None:
        fraction = float(spec.holdout.fraction or 0.2)
        hold = max(int(round(rows * fraction)), 1)
        return max(rows - hold, 1), hold, False
    if holdout_rows is not None:
        return rows, int(holdout_rows), False
    return rows, max(int(rows * DEFAULT_SOURCE_HOLDOUT_SHARE), 1), True


def cache_key(
    spec: ReleaseSpec, *, rows: int, holdout_rows: int, seed: int, shapes: Shapes | None = None
) -> str:
    """sha256 of what the simulation depends on (not the gate's thresholds)."""
    public = spec.model_dump(mode="json", by_alias=True)
    keep = {
        k: public.get(k)
        for k in ("schema", "privacy", "generator", "holdout", "synthetic_rows", "target")
    }
    gate = public.get("gate", {})
    keep["sampling"] = {k: gate.get(k) for k in ("sample_rows", "attack_rows")}
    keep["order"] = list(spec.columns)  # the stand-in depends on the column order
    keep["inputs"] = {"rows": rows, "holdout_rows": holdout_rows, "seed": seed}
    keep["shapes"] = None if shapes is None else [shapes.run_id, shapes.digest]
    keep["format"] = PLAN_FORMAT
    text = json.dumps(keep, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- forecast
def _forecasts(spec: ReleaseSpec, sim: Simulation) -> list[Forecast]:
    gate = spec.gate
    out = []
    for t in thresholds():
        if t.kind != "utility":
            continue
        if t.figure == "tstr_gap" and spec.target is None:
            continue
        threshold = float(getattr(gate, t.field))
        value = sim.predicted.get(t.figure)
        if value is None or not math.isfinite(value):
            reason = (
                "depends on how the target relates to the other columns in the real rows"
                if t.figure.startswith("tstr")
                else "not simulated for a table this wide"
            )
            out.append(Forecast(t.figure, t.bound, threshold, None, "not predicted", reason))
            continue
        outlook = _outlook(value, threshold, t.bound)
        remedy = ""
        if outlook != "likely" and t.figure.startswith("tvd_"):
            remedy = _tvd_remedy(spec, sim, t.figure, threshold)
        out.append(Forecast(t.figure, t.bound, threshold, value, outlook, remedy))
    return out


def _outlook(value: float, threshold: float, bound: str) -> Outlook:
    """A ``max`` figure (an error) by ratio: likely at or below LIKELY x threshold,
    unlikely above UNLIKELY x threshold. A ``min`` figure (a score in [0, 1]) by
    difference: likely SCORE_MARGIN above its threshold, unlikely 2 x SCORE_MARGIN
    below it (the stand-in's scores are rougher than its errors)."""
    if bound == "max":
        ratio = value / threshold
        return "likely" if ratio <= LIKELY else "borderline" if ratio <= UNLIKELY else "unlikely"
    if value >= threshold + SCORE_MARGIN:
        return "likely"
    return "borderline" if value >= threshold - 2 * SCORE_MARGIN else "unlikely"


def _tvd_remedy(spec: ReleaseSpec, sim: Simulation, figure: str, threshold: float) -> str:
    """figure(eps) = floor + b / eps, fitted on the simulation: the epsilon that reaches
    ``LIKELY`` x threshold, or, when the floor alone is too high, the bins to try."""
    base, value = sim.floor[figure], sim.predicted[figure]
    b = max(value - base, 0.0) * sim.epsilon
    target = LIKELY * threshold
    if base < target and b > 0:
        epsilon = b / (target - base)
        return f"passes at about epsilon {epsilon:.2g} (floor {base:.3f})"
    bins = int(spec.generator.params.get("bins", 32))
    return (
        f"the holdout's sampling error alone is about {base:.3f}: no epsilon is enough; "
        f"use fewer bins than {bins}, fewer categories, a larger holdout, or a looser "
        "threshold"
    )


def make_plan(
    spec: ReleaseSpec,
    *,
    rows: int | None = None,
    holdout_rows: int | None = None,
    seed: int = 0,
    cache: Path | None = None,
    shapes: Shapes | None = None,
) -> Plan:
    """The plan of ``spec``'s release (see the module docstring). ``cache``: a folder
    for cached simulations (``<workspace>/plans``); None computes afresh. ``shapes``: a
    DP measurement of the table's 1-way marginals (:func:`~synthrelease.planning.shapes.
    load_shapes`) for the stand-in; None: the prior's shapes."""
    n, provenance = _rows(spec, rows, shapes)
    train, hold, assumed = _parts(spec, n, holdout_rows)
    sim = mean_simulation(
        [
            _cached_simulation(
                spec, train=train, hold=hold, rows=n, seed=seed + k, cache=cache, shapes=shapes
            )
            for k in range(standins_for(spec))
        ]
    )
    d = len(spec.columns)
    edges = max(d - 1, 1)  # MST's tree: every column joined
    noise = tuple(
        Noise(
            line.step,
            line.rho,
            line.mechanism,
            sigma := _sigma(line, d, edges),
            None if sigma is None else sigma / max(train, 1),
        )
        for line in sim.lines
    )
    notes = [
        f"predictions come from the spec's generator fitted on {standins_for(spec)} public "
        "stand-in table(s), averaged (the simulation reads no row); the real table's "
        "structure can move them either way",
        shapes.describe()
        if shapes is not None
        else "1-way shapes from the stand-in's prior (`synthrelease plan SPEC --measure "
        "EPSILON` measures the table's own under DP, charged to its budget)",
    ]
    if sim.simulated_rows < train:
        notes.append(
            f"simulated on {sim.simulated_rows:,} rows at epsilon {sim.simulated_epsilon:.3g}"
            " (the same noise relative to the row count)"
        )
    return Plan(
        name=spec.name,
        generator=spec.generator.name,
        epsilon=float(spec.privacy.epsilon),
        delta=float(spec.privacy.delta),
        rows=n,
        rows_provenance=provenance,
        train_rows=train,
        holdout_rows=hold,
        holdout_assumed=assumed,
        synthetic_rows=int(spec.synthetic_rows),
        noise=noise,
        predicted=dict(sim.predicted),
        floor=dict(sim.floor),
        truth=dict(sim.truth),
        forecasts=tuple(_forecasts(spec, sim)),
        simulated_rows=sim.simulated_rows,
        simulated_epsilon=sim.simulated_epsilon,
        fit_seconds=sim.fit_seconds,
        notes=tuple(notes),
        shapes="prior" if shapes is None else "dp",
    )


def _cached_simulation(
    spec: ReleaseSpec,
    *,
    train: int,
    hold: int,
    rows: int,
    seed: int,
    cache: Path | None,
    shapes: Shapes | None,
) -> Simulation:
    path = None
    if cache is not None:
        key = cache_key(spec, rows=rows, holdout_rows=hold, seed=seed, shapes=shapes)
        path = cache / f"{key}.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["lines"] = tuple(BudgetLine(**x) for x in raw["lines"])
            return Simulation(**raw)
        except (OSError, ValueError, TypeError, KeyError):
            pass
    sim = simulate(
        spec,
        train_rows=train,
        holdout_rows=hold,
        seed=seed,
        shapes=None if shapes is None else shapes.marginals(),
    )
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = asdict(sim)
            path.write_text(json.dumps(raw, sort_keys=True), encoding="utf-8")
        except OSError:
            pass  # a cache only
    return sim


# --------------------------------------------------------------------------- drafts
def nice_up(value: float) -> float:
    """``value`` rounded up to two significant digits (a threshold a person can read)."""
    if value <= 0 or not math.isfinite(value):
        return value
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return float(f"{math.ceil(value / step - 1e-9) * step:.3g}")


def gate_for_plan(spec: ReleaseSpec, plan: Plan) -> dict[str, float]:
    """Utility thresholds for a drafted spec: each predicted TVD times
    THRESHOLD_MARGIN, rounded up to two significant digits (at most 1), so that a
    measured figure up to twice the prediction still passes; a looser TSTR gap for a target that is
    not binary (macro-F1 and R2 move more than AUC). The SDMetrics score floors keep
    their defaults: the stand-in's scores are too rough to set them."""
    out: dict[str, float] = {}
    for way in ("tvd_1way", "tvd_2way", "tvd_3way"):
        value = plan.predicted.get(way)
        if value is not None and math.isfinite(value):
            out[f"max_{way}"] = min(nice_up(value * THRESHOLD_MARGIN), 1.0)
    if spec.target is not None:
        column = spec.columns[spec.target]
        labels = getattr(column, "labels", None)
        binary = column.type == "boolean" or (labels is not None and len(labels) == 2)
        out["max_tstr_gap"] = 0.15 if binary else 0.25
    return out


def workspace_plans(spec: ReleaseSpec) -> Path:
    """Where plans of ``spec`` are cached: ``<workspace>/plans``."""
    return Path(spec.workspace.path) / "plans"
