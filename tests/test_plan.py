"""`synthrelease plan`: a prediction from the spec alone, before any row is read.

The plan never opens the source (a spec whose table does not exist still plans), its
budget lines are the generator's own arithmetic, its predicted errors move with epsilon
the way the mechanisms' do, and `run` refuses a spec whose plan says the gate cannot
pass (nothing charged) unless `--anyway`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import yaml

from synthrelease.errors import SpecError
from synthrelease.generators.accounting import cdp_rho
from synthrelease.planning import choose_generator, gate_for_plan, make_plan, suggest_bins
from synthrelease.planning.choices import round_rows
from synthrelease.planning.plan import cache_key
from synthrelease.planning.simulate import STANDINS, mean_simulation, simulate
from synthrelease.spec import load_spec
from tests.test_cli import _ledger_entries, _run


def _plan_spec(spec_factory, tmp_path, **overrides):
    """The small test spec, pointing at a table that does not exist."""
    raw = {"source": {"kind": "csv", "path": str(tmp_path / "no-such-table.csv")}}
    raw.update(overrides)
    return spec_factory(**raw)


def test_plan_reads_no_row(spec_factory, tmp_path):
    """The source file does not exist: the plan is made from the spec alone."""
    spec = load_spec(_plan_spec(spec_factory, tmp_path, expected_rows=3000))
    plan = make_plan(spec)
    assert plan.rows == 3000 and plan.rows_provenance == "declared"
    assert plan.train_rows == 2100 and plan.holdout_rows == 900  # holdout fraction 0.3
    for way in ("tvd_1way", "tvd_2way", "tvd_3way"):
        assert 0 < plan.predicted[way] < 1
        assert 0 < plan.floor[way] <= plan.predicted[way] * 1.5


def test_budget_lines_are_the_mechanisms_own(spec_factory, tmp_path):
    """MST's three lines sum to rho(epsilon, delta); each Gaussian line's sigma is
    sqrt(count / (2 rho)), and its share of the rows is sigma / training rows."""
    spec = load_spec(_plan_spec(spec_factory, tmp_path))
    plan = make_plan(spec, rows=4000)
    rho = cdp_rho(epsilon=3.0, delta=1e-6)
    assert math.isclose(sum(n.rho for n in plan.noise), rho, rel_tol=1e-9)
    one = next(n for n in plan.noise if n.step == "1-way marginals")
    d = len(spec.columns)
    assert one.sigma == pytest.approx(math.sqrt(d / (2 * one.rho)))
    assert one.relative == pytest.approx(one.sigma / plan.train_rows)
    two = next(n for n in plan.noise if n.step == "2-way marginals")
    assert two.sigma == pytest.approx(math.sqrt((d - 1) / (2 * two.rho)))
    assert "rho" in plan.render() and "2-way marginals" in plan.render()


def test_more_epsilon_predicts_less_error(spec_factory, tmp_path):
    low = make_plan(
        load_spec(_plan_spec(spec_factory, tmp_path, privacy=_privacy(0.05))), rows=3000
    )
    high = make_plan(
        load_spec(_plan_spec(spec_factory, tmp_path, privacy=_privacy(5.0))), rows=3000
    )
    assert high.predicted["tvd_2way"] < low.predicted["tvd_2way"]
    assert high.truth["tvd_2way"] < low.truth["tvd_2way"]


def _privacy(epsilon):
    return {
        "epsilon": epsilon,
        "delta": 1e-6,
        "budget": {"epsilon": 10.0, "delta": 1e-5},
        "noise": "seeded",
        "seed": 7,
    }


def test_tight_gate_is_unlikely_and_says_at_which_epsilon(spec_factory, tmp_path):
    """A threshold between the floor and the prediction: the plan names an epsilon; a plan
    at that epsilon predicts (about) a pass."""
    spec = load_spec(_plan_spec(spec_factory, tmp_path, privacy=_privacy(0.1)))
    plan = make_plan(spec, rows=3000)
    floor, value = plan.floor["tvd_2way"], plan.predicted["tvd_2way"]
    assert floor < value
    tight = (floor + value) / 2 / 1.3  # between the two, past the 'unlikely' ratio
    tight = max(tight, floor * 1.2)
    gate = {"max_tvd_1way": 0.9, "max_tvd_2way": tight, "max_exact_copy_excess": 0.05}
    spec2 = load_spec(_plan_spec(spec_factory, tmp_path, privacy=_privacy(0.1), gate=gate))
    plan2 = make_plan(spec2, rows=3000)
    forecast = {f.name: f for f in plan2.forecasts}["tvd_2way"]
    assert forecast.outlook in ("unlikely", "borderline")
    assert "epsilon" in forecast.remedy
    epsilon = float(forecast.remedy.split("epsilon ")[1].split()[0])
    assert epsilon > 0.1
    spec3 = load_spec(
        _plan_spec(spec_factory, tmp_path, privacy=_privacy(min(epsilon, 9.0)), gate=gate)
    )
    assert make_plan(spec3, rows=3000).predicted["tvd_2way"] <= tight * 1.25


def test_floor_above_threshold_says_no_epsilon_is_enough(spec_factory, tmp_path):
    gate = {"max_tvd_1way": 0.9, "max_tvd_2way": 0.001, "max_exact_copy_excess": 0.05}
    spec = load_spec(_plan_spec(spec_factory, tmp_path, gate=gate))
    plan = make_plan(spec, rows=3000)
    forecast = {f.name: f for f in plan.forecasts}["tvd_2way"]
    assert forecast.outlook == "unlikely"
    assert "no epsilon is enough" in forecast.remedy
    assert not plan.gate_can_pass
    assert "CANNOT" in plan.summary_line()


def test_plan_needs_a_public_row_count(spec_factory, tmp_path):
    spec = load_spec(_plan_spec(spec_factory, tmp_path))
    with pytest.raises(SpecError, match="expected_rows"):
        make_plan(spec)


def test_cache_is_reused_and_ignores_thresholds(spec_factory, tmp_path):
    spec = load_spec(_plan_spec(spec_factory, tmp_path))
    cache = tmp_path / "plans"
    first = make_plan(spec, rows=3000, cache=cache)
    assert len(list(cache.glob("*.json"))) == STANDINS  # one simulation a stand-in
    start = time.perf_counter()
    again = make_plan(spec, rows=3000, cache=cache)
    assert time.perf_counter() - start < 1.0
    assert again.predicted == first.predicted
    gate = {"max_tvd_1way": 0.5, "max_tvd_2way": 0.5, "max_exact_copy_excess": 0.05}
    looser = load_spec(_plan_spec(spec_factory, tmp_path, gate=gate))
    key = cache_key(spec, rows=3000, holdout_rows=900, seed=0)
    assert cache_key(looser, rows=3000, holdout_rows=900, seed=0) == key
    assert cache_key(spec, rows=3001, holdout_rows=900, seed=0) != key


def test_gate_for_plan_leaves_room_over_the_prediction(spec_factory, tmp_path):
    spec = load_spec(_plan_spec(spec_factory, tmp_path, target="smoker"))
    plan = make_plan(spec, rows=3000)
    gate = gate_for_plan(spec, plan)
    for way in ("tvd_1way", "tvd_2way", "tvd_3way"):
        assert plan.predicted[way] * 2.0 <= gate[f"max_{way}"] <= 1.0
    assert gate["max_tstr_gap"] == 0.15  # a boolean target: AUC


def test_choices_follow_public_facts():
    assert choose_generator(columns=15, target="income") == "aim"
    assert choose_generator(columns=15, target=None) == "mst"
    assert choose_generator(columns=60, target="y") == "mst"
    few = suggest_bins(rows=2_000, epsilon=1.0, delta=1e-6, columns=30)
    many = suggest_bins(rows=200_000, epsilon=1.0, delta=1e-6, columns=10)
    assert few < many <= 32
    assert suggest_bins(rows=20_000, epsilon=0.1, delta=1e-6, columns=15) <= suggest_bins(
        rows=20_000, epsilon=10.0, delta=1e-6, columns=15
    )
    assert round_rows(32_561) == 32_000 and round_rows(5_543) == 5_500 and round_rows(42) == 42


# --------------------------------------------------------------------------- CLI
def test_cli_plan_prints_the_plan(capsys, spec_factory, tmp_path):
    path = _plan_spec(spec_factory, tmp_path)
    code, out, _ = _run(capsys, "plan", str(path), "--rows", "3000")
    assert code == 0
    assert (
        "Budget lines" in out
        and "tvd_2way" in out
        and "either way" in out
        and "shapes from the stand-in's prior" in out
    )
    code, out, _ = _run(capsys, "plan", str(path), "--rows", "3000", "--json")
    assert code == 0 and yaml.safe_load(out)["rows"] == 3000


def test_run_refuses_a_doomed_spec_before_charging(capsys, spec_factory):
    gate = {"max_tvd_1way": 0.9, "max_tvd_2way": 0.001, "max_exact_copy_excess": 0.05}
    path = spec_factory(gate=gate, expected_rows=3000)
    code, out, err = _run(capsys, "run", str(path), "--engine", "direct")
    assert code == 2
    assert out.startswith("plan: mst at epsilon 3")
    assert "cannot be expected to pass" in err and "--anyway" in err
    assert _ledger_entries(path) == []  # nothing charged


def test_run_anyway_runs_and_is_charged(capsys, spec_factory):
    gate = {"max_tvd_1way": 0.9, "max_tvd_2way": 0.001, "max_exact_copy_excess": 0.05}
    path = spec_factory(gate=gate, expected_rows=3000)
    code, out, _ = _run(capsys, "run", str(path), "--engine", "direct", "--anyway")
    assert code == 4  # the gate refused, as planned; the run read rows: charged
    assert "running anyway" in out
    assert len(_ledger_entries(path)) == 1


def test_the_plan_averages_its_stand_ins(spec_factory, tmp_path):
    """Each stand-in is one draw from the prior of tables: the plan's figures are the
    mean of STANDINS simulations, seeds seed..seed+STANDINS-1."""
    spec = load_spec(_plan_spec(spec_factory, tmp_path))
    plan = make_plan(spec, rows=3000)
    sims = [simulate(spec, train_rows=2100, holdout_rows=900, seed=k) for k in range(STANDINS)]
    assert len({s.predicted["tvd_2way"] for s in sims}) == STANDINS  # they differ
    mean = mean_simulation(sims)
    assert plan.predicted == pytest.approx(mean.predicted)
    assert plan.floor["tvd_2way"] == pytest.approx(np.mean([s.floor["tvd_2way"] for s in sims]))
