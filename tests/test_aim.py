"""AIM: accounting, adaptivity, persistence and refusals, on small seeded tables."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from synthrelease.errors import GeneratorError, PrivacyError
from synthrelease.generators import AIMGenerator, MSTGenerator, build_generator, load_generator
from synthrelease.generators.accounting import PrivacyReport, cdp_rho
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.aim_mechanism import Plan
from synthrelease.generators.marginal.aim_workload import WorkloadQuery, candidates, resolve
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, GeneratorSpec

ROWS = 3011  # odd, so that a leak into a log line is easy to spot
_COL = TypeAdapter(Column)
COLUMNS = {
    "a": _COL.validate_python({"type": "boolean"}),
    "b": _COL.validate_python({"type": "boolean"}),
    "y": _COL.validate_python({"type": "categorical", "categories": ["no", "yes"]}),
    "age": _COL.validate_python(
        {"type": "numerical", "lower": 0, "upper": 100, "integer": True, "bins": 8}
    ),
    "city": _COL.validate_python(
        {"type": "categorical", "categories": ["p", "q", "r"], "nullable": True}
    ),
}


def _frame(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    """y = a XOR b (5% flipped): every 2-way marginal of (a, b, y) is independent, the
    3-way one is not, so no tree of 2-way marginals (MST) can represent it."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(rows) < 0.5, rng.random(rows) < 0.5
    y = (a ^ b) ^ (rng.random(rows) < 0.05)
    age = np.clip(rng.normal(40 + 15 * a, 12, rows), 0, 100).round().astype(int)
    city = rng.choice(["p", "q", "r", None], size=rows, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame({"a": a, "b": b, "y": np.where(y, "yes", "no"), "age": age, "city": city})


def _fit(epsilon: float = 2.0, seed: int = 3, **params) -> AIMGenerator:
    gen = AIMGenerator(COLUMNS, epsilon=epsilon, delta=1e-6, params=params, target="y")
    gen.fit(SensitiveTable(_frame(), label="toy"), noise=NoiseSource.seeded(seed))
    return gen


@pytest.fixture(scope="module")
def fitted() -> AIMGenerator:
    return _fit()


def _tvd(real: pd.DataFrame, synth: pd.DataFrame, cols: list[str]) -> float:
    disc = Discretiser({c: COLUMNS[c] for c in cols})
    r, s = disc.encode(real), disc.encode(synth)
    fr, fs = np.zeros(len(r), np.int64), np.zeros(len(s), np.int64)
    for c in cols:
        fr, fs = fr * disc.sizes[c] + r[c].to_numpy(), fs * disc.sizes[c] + s[c].to_numpy()
    m = math.prod(disc.sizes.values())
    return 0.5 * float(
        np.abs(np.bincount(fr, minlength=m) / len(r) - np.bincount(fs, minlength=m) / len(s)).sum()
    )


# --------------------------------------------------------------------------- accounting
def test_the_rounds_sum_to_the_budget(fitted: AIMGenerator) -> None:
    report = fitted.report
    steps = [line.step for line in report.lines]
    assert steps[0] == "1-way marginals"
    rounds = (len(steps) - 1) // 2
    assert rounds >= 2 and len(steps) == 1 + 2 * rounds
    for t in range(1, rounds + 1):
        assert steps[2 * t - 1] == f"round {t}: select"
        assert steps[2 * t].startswith(f"round {t}: measure ")
    assert math.fsum(line.rho for line in report.lines) == pytest.approx(report.rho, rel=1e-12)
    assert report.rho == pytest.approx(cdp_rho(epsilon=2.0, delta=1e-6), rel=1e-9)
    assert report.epsilon <= 2.0 and report.epsilon == pytest.approx(2.0, rel=1e-9)
    assert {line.mechanism for line in report.lines} == {
        "Gaussian",
        "exponential mechanism (Gumbel-max)",
    }
    # the manifest records the mechanism fully: workload, plan, rounds run
    settings = report.to_dict()["settings"]
    assert settings["rounds"] == rounds and settings["planned_rounds"] >= 1
    assert {tuple(q["columns"]) for q in settings["workload"]} == {
        tuple(fitted.discretiser.names[a] for a in c) for c in fitted.workload
    }
    assert PrivacyReport.from_dict(report.to_dict()).settings == settings


@settings(max_examples=60, deadline=None)
@given(
    rho=st.floats(1e-4, 50),
    rounds=st.integers(1, 400),
    share=st.floats(0.05, 0.95),
    anneals=st.lists(st.booleans(), max_size=200),
)
def test_plan_never_overspends_and_ends_exactly(rho, rounds, share, anneals) -> None:
    plan = Plan(rho, rounds, share=share)
    spent = [plan.charge(0.5 / plan.sigma**2)]  # the 1-way marginals: d = 1 here
    if plan.used >= rho:
        return  # one column, one round planned: the 1-way marginals took it all
    steps = iter(anneals)
    while True:
        last = plan.next_round()
        spent.append(0.5 / plan.sigma**2 + plan.eps**2 / 8)
        if last:
            break
        if next(steps, False):
            plan.anneal()
    assert math.fsum(spent) <= rho
    assert math.fsum(spent) == pytest.approx(rho, rel=1e-9)


def test_quantile_edges_are_a_budget_line_and_stay_in_the_model(tmp_path: Path) -> None:
    gen = _fit(epsilon=1.0, quantile_edges=["age"], rounds=20, max_rounds=3)
    report = gen.report
    assert sum(line.step.endswith("select") for line in report.lines) == 3  # max_rounds
    assert report.lines[0].step == "DP quantile edges (1 column)"
    assert report.lines[0].rho == pytest.approx(0.05 * cdp_rho(epsilon=1.0, delta=1e-6), rel=1e-9)
    assert report.rho == pytest.approx(cdp_rho(epsilon=1.0, delta=1e-6), rel=1e-9)
    edges = gen.resolved_columns["age"].edges
    assert gen.columns["age"].edges is None  # the declared spec is unchanged
    assert edges and all(0 < e < 100 for e in edges) and list(edges) == sorted(set(edges))
    gen.save(tmp_path / "m")
    again = load_generator(tmp_path / "m")
    assert again.resolved_columns["age"].edges == edges
    out = again.sample(500, rng=np.random.default_rng(0))
    assert out["age"].between(0, 100).all()


# --------------------------------------------------------------------------- utility
def test_aim_preserves_a_planted_3way_workload_marginal_better_than_mst() -> None:
    real = _frame(seed=0)
    aim = _fit(epsilon=2.0)
    mst = MSTGenerator(COLUMNS, epsilon=2.0, delta=1e-6)
    mst.fit(SensitiveTable(_frame(), label="toy"), noise=NoiseSource.seeded(3))
    assert any(set(c) == {0, 1, 2} for c in aim.model.measured)  # AIM measured (a, b, y)
    tvd_aim = _tvd(real, aim.sample(ROWS, rng=np.random.default_rng(1)), ["a", "b", "y"])
    tvd_mst = _tvd(real, mst.sample(ROWS, rng=np.random.default_rng(1)), ["a", "b", "y"])
    assert tvd_aim < 0.08 < 0.3 < tvd_mst  # MST: a, b, y independent given any tree
    synth = aim.sample(ROWS, rng=np.random.default_rng(2))
    xor = (synth["a"].astype(bool) ^ synth["b"].astype(bool)) == (synth["y"] == "yes")
    assert xor.mean() > 0.85  # planted: 0.95


# --------------------------------------------------------------------------- persistence
def test_fit_is_reproducible_and_touches_no_global_state(fitted: AIMGenerator) -> None:
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    again = _fit()
    assert again.report == fitted.report
    pd.testing.assert_frame_equal(
        again.sample(300, rng=np.random.default_rng(7)),
        fitted.sample(300, rng=np.random.default_rng(7)),
    )
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_save_load_round_trip(fitted: AIMGenerator, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = load_generator(tmp_path / "m")
    assert isinstance(loaded, AIMGenerator) and loaded.report == fitted.report
    assert loaded.params.target == "y"
    pd.testing.assert_frame_equal(
        loaded.sample(400, rng=np.random.default_rng(9)),
        fitted.sample(400, rng=np.random.default_rng(9)),
    )
    out = loaded.sample(2000, rng=np.random.default_rng(1))
    assert set(out["y"]) <= {"no", "yes"} and 0 < out["city"].isna().mean() < 0.15


def test_logs_hold_neither_the_row_count_nor_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        _fit(rounds=10)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "aim: fitted" in text and str(ROWS) not in text


# --------------------------------------------------------------------------- refusals
def test_workload_and_target_are_checked_before_any_data() -> None:
    with pytest.raises(GeneratorError, match="unknown column"):
        AIMGenerator(COLUMNS, epsilon=1, delta=1e-6, params={"workload": [{"columns": ["zz"]}]})
    with pytest.raises(GeneratorError, match="target"):
        AIMGenerator(COLUMNS, epsilon=1, delta=1e-6, params={"target": "nope"})
    with pytest.raises(GeneratorError, match="not a numerical column"):
        AIMGenerator(COLUMNS, epsilon=1, delta=1e-6, params={"quantile_edges": ["city"]})
    with pytest.raises(GeneratorError, match="bogus"):
        build_generator(
            GeneratorSpec(name="aim", params={"bogus": 1}), COLUMNS, epsilon=1.0, delta=1e-6
        )
    gen = AIMGenerator(COLUMNS, epsilon=1, delta=1e-6)
    with pytest.raises(GeneratorError):
        gen.fit(SensitiveTable(_frame(), label="t"), noise=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(GeneratorError, match="not fitted"):
        gen.sample(3, rng=np.random.default_rng(0))
    with pytest.raises(PrivacyError):
        len(SensitiveTable(_frame(), label="t"))


def test_registry_passes_the_spec_target_unless_params_name_one() -> None:
    gen = build_generator(GeneratorSpec(name="aim"), COLUMNS, epsilon=1.0, delta=1e-6, target="y")
    assert isinstance(gen, AIMGenerator) and gen.params.target == "y"
    gen = build_generator(
        GeneratorSpec(name="aim", params={"target": "a"}),
        COLUMNS,
        epsilon=1.0,
        delta=1e-6,
        target="y",
    )
    assert gen.params.target == "a"
    assert isinstance(
        build_generator(GeneratorSpec(name="mst"), COLUMNS, epsilon=1.0, delta=1e-6, target="y"),
        MSTGenerator,
    )


def test_default_workload_and_candidate_weights() -> None:
    names = ["a", "b", "c", "t"]
    work = resolve(names, workload=None, target="t")
    assert set(work) == {
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 2),
        (1, 3),
        (2, 3),
        (0, 1, 3),
        (0, 2, 3),
        (1, 2, 3),
    }
    cands = candidates(work)
    assert cands[(0, 1, 3)] == (2 + 1 + 2 + 1 + 2 + 1) + (3 + 2 + 2)  # pairs, then triples
    assert cands[(3,)] == 3 + 3  # three pairs and three triples hold t
    custom = resolve(names, workload=[WorkloadQuery(columns=("b", "a"), weight=2.5)], target=None)
    assert custom == {(0, 1): 2.5}


def test_max_model_size_bounds_the_junction_tree() -> None:
    """Memory bound: with a small cap, big candidates are skipped (recorded in the
    manifest settings) and the final junction tree stays under the cap."""
    cap_mb = 0.0003  # 39 float64 cells: every 3-way candidate with age and city (64) is over
    gen = _fit(epsilon=2.0, max_model_size=cap_mb)
    settings = gen.report.settings
    assert settings["candidates_over_max_model_size"] > 0
    assert settings["model_cells"] <= cap_mb * 2**17
    assert gen.report.rho == pytest.approx(cdp_rho(epsilon=2.0, delta=1e-6), rel=1e-9)
