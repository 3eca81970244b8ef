"""Validation figures computed against the real rows. A trusted reader (``reveal()``).

This is the only validator module that touches sensitive rows. It returns figures only:
no rows, no row counts, no observed values leave it, and it logs none of them. The
figures themselves are not differentially private and belong in the internal report.
:func:`real_data_figures` gives the first slice's figures (below);
:func:`evaluate_against_real` runs every utility and privacy check (the metric modules
are pure functions on the samples it hands them; see ``validators/evaluation.py``).

Figures (all in [0, 1] except the excess, in [-1, 1]):

- ``tvd_1way``, ``tvd_2way``: mean TVD of the 1-/2-way marginals, synthetic vs holdout,
  on the public discretised domain.
- ``exact_copy_share``: share of synthetic rows identical to some training row.
- ``exact_copy_holdout_share``: share identical to some holdout row.
- ``exact_copy_excess``: share against a random training subsample the size of the
  holdout reference (averaged over ``train_draws`` subsamples, which roughly halves its
  noise), minus ``exact_copy_holdout_share``. Equal-size references make the natural
  collision rate of low-cardinality tables cancel; a generator that memorises training
  rows shows up as a positive excess. When the training part is larger than the holdout
  reference, only copies of the subsampled rows count, so the excess of a pure copier is
  about (holdout size / training size), not 1.

Rows are compared on the declared columns after normalising them per declared type
(``validators/copies.py``), then hashed. Work is bounded: each table is subsampled with
the passed generator to at most ``max_rows`` rows (the training reference for
``exact_copy_share``: ``max_reference_rows``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Collection, Iterable, Mapping

import numpy as np
import pandas as pd

from synthrelease.errors import SchemaMismatchError
from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import NumericalColumn
from synthrelease.validators.copies import row_hashes, share_in
from synthrelease.validators.distance import FIGURES as DISTANCE_FIGURES
from synthrelease.validators.distance import distance_figures
from synthrelease.validators.distributions import (
    association_gap,
    association_matrix,
    distributions,
)
from synthrelease.validators.encoding import MixedMatrix, encode_mixed
from synthrelease.validators.evaluation import CHECKS, Collector, Evaluation, Settings
from synthrelease.validators.features import typed_frame
from synthrelease.validators.inference import inference_risk
from synthrelease.validators.linkability import linkability_risk
from synthrelease.validators.membership import FIGURES as MIA_FIGURES
from synthrelease.validators.membership import membership_attack
from synthrelease.validators.sdmetrics_reports import FIGURES as SDMETRICS_FIGURES
from synthrelease.validators.sdmetrics_reports import sdmetrics_figures
from synthrelease.validators.singling_out import singling_out_risk
from synthrelease.validators.tstr import FIGURES as TSTR_FIGURES
from synthrelease.validators.tstr import tstr_figures
from synthrelease.validators.utility import marginal_tvd, sampled_workload

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.real")  # failed real-data checks

DEFAULT_MAX_ROWS = 50_000
DEFAULT_MAX_REFERENCE_ROWS = 1_000_000
DEFAULT_TRAIN_DRAWS = 5
FIGURE_NAMES = (
    "tvd_1way",
    "tvd_2way",
    "exact_copy_share",
    "exact_copy_holdout_share",
    "exact_copy_excess",
)


def real_data_figures(
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    synthetic: pd.DataFrame,
    discretiser: Discretiser,
    rng: np.random.Generator,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_reference_rows: int = DEFAULT_MAX_REFERENCE_ROWS,
    train_draws: int = DEFAULT_TRAIN_DRAWS,
) -> dict[str, float]:
    """The utility and copy figures of ``synthetic`` against the real train/holdout parts.

    ``discretiser`` is the ``generators.domain.Discretiser`` of the declared schema; its
    coders' specs define the compared columns. If the synthetic table falls outside the
    declared domain, the TVD figures are NaN (the gate then fails) and a warning names
    the error type; anything else wrong raises.
    """
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError("synthetic must be a pandas DataFrame")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    if min(max_rows, max_reference_rows, train_draws) < 1:
        raise ValueError("max_rows, max_reference_rows and train_draws must be positive")
    specs: Mapping[str, object] = {n: c.spec for n, c in discretiser.coders.items()}

    train_rows = _declared(train.reveal(), specs, what="train")
    holdout_rows = _subsample(_declared(holdout.reveal(), specs, what="holdout"), max_rows, rng)
    synth_rows = _subsample(_declared(synthetic, specs, what="synthetic"), max_rows, rng)
    if min(len(train_rows), len(holdout_rows), len(synth_rows)) == 0:
        raise ValueError("train, holdout and synthetic must all have rows")

    figures = _tvd_figures(holdout_rows, synth_rows, discretiser)

    synth_hash = row_hashes(synth_rows, specs)
    reference = _subsample(train_rows, max_reference_rows, rng)
    figures["exact_copy_share"] = share_in(synth_hash, row_hashes(reference, specs))
    size = min(len(train_rows), len(holdout_rows))
    holdout_same = _subsample(holdout_rows, size, rng)
    holdout_share = share_in(synth_hash, row_hashes(holdout_same, specs))
    draws = 1 if len(train_rows) <= size else train_draws
    train_share = np.mean(
        [
            share_in(synth_hash, row_hashes(_subsample(train_rows, size, rng), specs))
            for _ in range(draws)
        ]
    )
    figures["exact_copy_holdout_share"] = holdout_share
    figures["exact_copy_excess"] = float(train_share) - holdout_share
    logger.info("real-data figures computed: %s", ", ".join(FIGURE_NAMES))
    return {name: float(figures[name]) for name in FIGURE_NAMES}


def _declared(frame: pd.DataFrame, specs: Mapping[str, object], *, what: str) -> pd.DataFrame:
    missing = [c for c in specs if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"{what} table lacks declared columns {missing!r}")
    return frame[list(specs)]


def _subsample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    keep = np.sort(rng.choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep]


def _tvd_figures(
    holdout: pd.DataFrame, synthetic: pd.DataFrame, discretiser: Discretiser
) -> dict[str, float]:
    holdout_codes = discretiser.encode(holdout)  # real rows are in the domain (checked at load)
    try:
        synth_codes = discretiser.encode(synthetic)
    except SchemaMismatchError as exc:
        logger.warning("synthetic table is outside the declared domain (%s)", type(exc).__name__)
        return {"tvd_1way": float("nan"), "tvd_2way": float("nan")}
    sizes = discretiser.sizes
    tvd_1way = marginal_tvd(synth_codes, holdout_codes, sizes, way=1)
    # A one-column table has no pairs: its whole joint distribution is the 1-way marginal.
    tvd_2way = tvd_1way
    if len(sizes) > 1:
        tvd_2way = marginal_tvd(synth_codes, holdout_codes, sizes, way=2)
    return {"tvd_1way": tvd_1way, "tvd_2way": tvd_2way}


def evaluate_against_real(
    *,
    train: SensitiveTable,
    holdout: SensitiveTable,
    synthetic: pd.DataFrame,
    discretiser: Discretiser,
    target: str | None,
    rng: np.random.Generator,
    settings: Settings = Settings(),
    only: Collection[str] | None = None,
) -> Evaluation:
    """Every utility and privacy figure of ``synthetic`` against the real parts (or the
    checks named in ``only``, a subset of :data:`CHECKS`).

    Seeded subsamples bound the work (``settings``): with fixed sizes the time is linear
    in the rows (sampling) plus a constant. Each check draws from its own child of
    ``rng`` (spawned in :data:`CHECKS` order), so a check's figures are the same whether
    it runs with the others or alone. Each check fails closed on its own (NaN figures,
    error type recorded); a wrong argument raises.
    """
    if not isinstance(train, SensitiveTable) or not isinstance(holdout, SensitiveTable):
        raise TypeError("train and holdout must be SensitiveTable")
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError("synthetic must be a pandas DataFrame")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    wanted = set(CHECKS if only is None else only)
    if not wanted or wanted - set(CHECKS):
        raise ValueError(f"only: names checks among {', '.join(CHECKS)}")
    specs: Mapping[str, object] = {n: c.spec for n, c in discretiser.coders.items()}
    if target is not None and target not in specs:
        raise ValueError("the target is not a declared column")
    s, a, m = settings.sample_rows, settings.attack_rows, settings.marginal_rows
    train_all = _clip_numbers(_declared(train.reveal(), specs, what="train"), specs)
    hold_all = _clip_numbers(_declared(holdout.reveal(), specs, what="holdout"), specs)
    hold_m = _shuffled(hold_all, m, rng)
    synth_m = _shuffled(_declared(synthetic, specs, what="synthetic"), m, rng)
    hold, synth = hold_m.iloc[:s], synth_m.iloc[:s]  # random rows: a prefix is a sample
    if min(len(train_all), len(hold), len(synth)) < 4:
        raise ValueError("train, holdout and synthetic need at least four rows each")
    train_ref = _shuffled(train_all, len(hold), rng)  # the holdout's size: equal references
    child = dict(zip(CHECKS, rng.spawn(len(CHECKS))))
    out = Collector()
    out.evaluation.details["settings"] = settings.to_dict()

    def run(name: str, check: Callable[[], Any], owns: Iterable[str]) -> None:
        if name in wanted:
            out.run(name, check, owns)

    @functools.cache
    def typed(which: str) -> pd.DataFrame:
        return typed_frame({"hold": hold, "synth": synth}[which], specs)

    @functools.cache
    def encoded(which: str) -> MixedMatrix:
        return encode_mixed({"train": train_ref, "hold": hold, "synth": synth}[which], specs)

    run("marginals_and_copies", lambda: (real_data_figures(
        train=SensitiveTable(train_all, label=train.label),
        holdout=SensitiveTable(hold_all, label=holdout.label), synthetic=synthetic,
        discretiser=discretiser, rng=child["marginals_and_copies"], max_rows=m), {}),
        FIGURE_NAMES)
    run("marginals_3way", lambda: _tvd_3way(hold_m, synth_m, discretiser,
                                            child["marginals_3way"], settings), ("tvd_3way",))
    run("plots", lambda: _plots(hold, synth, discretiser), ("association_gap",))
    run("sdmetrics", lambda: sdmetrics_figures(
        real=typed("hold"), synthetic=typed("synth"), specs=specs), SDMETRICS_FIGURES)
    if target is not None:
        run("tstr", lambda: _tstr(train_all, typed("synth"), typed("hold"), specs, target,
                                  s, child["tstr"]), TSTR_FIGURES)
    half = len(hold) // 2
    run("distance", lambda: distance_figures(
        synthetic=first(encoded("synth"), a), train=encoded("train"), holdout=encoded("hold"),
        rng=child["distance"]), DISTANCE_FIGURES)
    run("membership", lambda: membership_attack(
        members=first(encoded("train"), min(a, half)),
        non_members=first(encoded("hold"), min(a, half)),
        reference=encoded("hold").take(np.arange(half, len(hold))), synthetic=encoded("synth"),
        rng=child["membership"]), MIA_FIGURES)
    run("singling_out", lambda: singling_out_risk(
        synthetic=encoded("synth"), train=encoded("train"), control=encoded("hold"),
        rng=child["singling_out"], queries=settings.singling_out_queries),
        _risk_figures("singling_out"))
    run("linkability", lambda: linkability_risk(
        synthetic=encoded("synth"), targets=first(encoded("train"), a),
        controls=first(encoded("hold"), a), rng=child["linkability"]),
        _risk_figures("linkability"))
    run("inference", lambda: inference_risk(
        synthetic=encoded("synth"), targets=first(encoded("train"), a),
        controls=first(encoded("hold"), a), rng=child["inference"]),
        _risk_figures("inference"))
    failed = sorted(out.evaluation.errors)
    private_logger.info("real-data evaluation: %d checks failed%s", len(failed),
                        f" ({', '.join(failed)})" if failed else "")
    return out.evaluation


def _tstr(train_all: pd.DataFrame, typed_synth: pd.DataFrame, typed_hold: pd.DataFrame,
          specs: Mapping[str, object], target: str, rows: int,
          rng: np.random.Generator) -> tuple[dict[str, float], dict[str, Any]]:
    """Train-synthetic/test-real against train-real/test-real, on equal-size samples."""
    fit = min(len(typed_synth), len(train_all), rows)
    typed_train = typed_frame(_shuffled(train_all, fit, rng), specs)
    return tstr_figures(synthetic=typed_synth.iloc[:fit], train=typed_train,
                        holdout=typed_hold, specs=specs, target=target,
                        seed=int(rng.integers(2**31)))


def _clip_numbers(frame: pd.DataFrame, specs: Mapping[str, object]) -> pd.DataFrame:
    """Real numbers outside the validation domain clipped to it, as the generator saw
    them (``train`` already clips to declared bounds; a DP-estimated bound can be
    narrower than the rows). Copies only the columns it changes."""
    out = frame
    for name, spec in specs.items():
        if not isinstance(spec, NumericalColumn) or spec.lower is None or spec.upper is None:
            continue
        x = pd.to_numeric(frame[name], errors="coerce")
        if ((x < spec.lower) | (x > spec.upper)).any():
            out = out.copy() if out is frame else out
            out[name] = x.clip(spec.lower, spec.upper)
    return out


def first(matrix: MixedMatrix, rows: int) -> MixedMatrix:
    """The first ``rows`` rows: a random sample, since every sample here is shuffled."""
    return matrix.take(np.arange(min(rows, matrix.rows)))


def _shuffled(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    """A random sample of at most ``limit`` rows, in random order."""
    take = rng.permutation(len(frame))[: max(0, int(limit))]
    return frame.iloc[take].reset_index(drop=True)


def _risk_figures(attack: str) -> tuple[str, str, str]:
    return (f"{attack}_risk", f"{attack}_risk_low", f"{attack}_risk_high")


def _tvd_3way(
    hold: pd.DataFrame, synth: pd.DataFrame, discretiser: Discretiser,
    rng: np.random.Generator, settings: Settings,
) -> tuple[dict[str, float], dict[str, int]]:
    sizes = discretiser.sizes
    way = min(3, len(sizes))  # fewer columns: the widest marginal there is (the joint)
    workload = sampled_workload(sizes, way=way, max_marginals=settings.max_marginals, rng=rng)
    value = marginal_tvd(discretiser.encode(synth), discretiser.encode(hold), sizes, way=way,
                         workload=workload)
    return {"tvd_3way": value}, {"marginals": len(workload), "way": way}


def _plots(
    hold: pd.DataFrame, synth: pd.DataFrame, discretiser: Discretiser
) -> tuple[dict[str, float], dict[str, object]]:
    real_codes, synth_codes = discretiser.encode(hold), discretiser.encode(synth)
    sizes = discretiser.sizes
    real_assoc = association_matrix(real_codes, sizes)
    synth_assoc = association_matrix(synth_codes, sizes)
    details = {
        "distributions": distributions(
            real_codes=real_codes, synthetic_codes=synth_codes, coders=discretiser.coders),
        "association": {"columns": list(sizes), "real": real_assoc, "synthetic": synth_assoc},
    }
    return {"association_gap": association_gap(real_assoc, synth_assoc)}, details
