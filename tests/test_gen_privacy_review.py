"""Fixes from the privacy review of the generators: DP-SGD randomness (fresh OS entropy
per step in secure mode, float64 Poisson sampling against a public-grid rate that the
accountant uses too), non-DP values only on ``synthrelease.private.*`` loggers, AIM
parameters refused before any row is read, and DP outputs stored on a public grid."""

from __future__ import annotations

import ast
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import TypeAdapter

from synthrelease.errors import GeneratorError
from synthrelease.generators import AIMGenerator, MSTGenerator, build_generator, dp_domain, dp_edges
from synthrelease.generators.dpsgd import randomness as dpsgd_randomness
from synthrelease.generators.dpsgd import train as dpsgd_train
from synthrelease.generators.dpsgd.generator import DPSGDGenerator
from synthrelease.generators.dpsgd.model import MADE
from synthrelease.generators.dpsgd.randomness import (
    StepRandomness,
    poisson_indices,
    public_sample_rate,
)
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, GeneratorSpec
from tests.conftest import SMALL_COLUMNS, make_table

COL = TypeAdapter(Column)
COLUMNS = {n: COL.validate_python(c) for n, c in SMALL_COLUMNS.items()}
FAST = {"epochs": 1, "batch_size": 256, "hidden": [16, 16], "bins": 8, "device": "cpu"}
ROWS = 2011  # odd, so that a leak into a public log line is easy to spot
CPU = torch.device("cpu")
GRID = 2.0**-40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> SensitiveTable:
    return SensitiveTable(make_table(ROWS), label="small")


def _dpsgd(**params) -> DPSGDGenerator:
    return DPSGDGenerator(COLUMNS, epsilon=3.0, delta=1e-6, params={**FAST, **params})


def _public(records) -> list[logging.LogRecord]:
    return [r for r in records if not r.name.startswith("synthrelease.private.")]


# --------------------------------------------------------------------------- 1. DP-SGD randomness
@pytest.mark.parametrize("rate", [1e-9, 0.1, 1 / 3, 0.123456789012345, 0.999999, 1.0, 7.5])
def test_sample_rate_is_rounded_down_onto_the_public_grid(rate):
    q = public_sample_rate(rate)
    assert q <= min(rate, 1.0) and min(rate, 1.0) - q < GRID
    assert (q / GRID).is_integer()
    assert public_sample_rate(q) == q
    with pytest.raises(GeneratorError, match="batch_size"):
        public_sample_rate(GRID / 2)


def test_the_accounted_sample_rate_is_the_one_the_sampler_uses(table, monkeypatch):
    used = []
    real = dpsgd_train.poisson_indices

    def spy(rows, rate, randomness):
        used.append(rate)
        return real(rows, rate, randomness)

    monkeypatch.setattr(dpsgd_train, "poisson_indices", spy)
    report = _dpsgd().fit(table, noise=NoiseSource.seeded(0))
    q = report.training["sample_rate"]
    assert set(used) == {q} and len(used) == report.training["steps"]
    assert (q / GRID).is_integer() and q <= 256 / report.training["dp_row_count"]
    assert report.composition[-1].sample_rate == q  # what the accountant composed


def test_poisson_sampling_draws_its_size_at_the_grid_rate_itself():
    """The batch size is Binomial(rows, q) with q the float64 grid rate, unrounded; the
    rows are distinct (a sample without replacement, as per-row coins give)."""
    q = public_sample_rate(0.1)
    seen = []

    class Spy:
        def __init__(self) -> None:
            self.rng = np.random.default_rng(0)

        def binomial(self, n, p):
            seen.append((n, p))
            return self.rng.binomial(n, p)

        def choice(self, *args, **kwargs):
            return self.rng.choice(*args, **kwargs)

    class Fixed:
        sampling = Spy()

    index = poisson_indices(5000, q, Fixed())
    assert seen == [(5000, q)] and type(seen[0][1]) is float
    assert index.dtype == np.int64 and np.all(np.diff(index) > 0)
    assert 0 <= index[0] and index[-1] < 5000 and abs(index.size / 5000 - q) < 0.02


def test_secure_mode_rekeys_every_generator_every_step_with_os_entropy(table, monkeypatch):
    drawn: list[int] = []
    real_urandom = os.urandom
    monkeypatch.setattr(os, "urandom", lambda n: drawn.append(n) or real_urandom(n))
    rnd = StepRandomness(CPU, seeds=None)
    drawn.clear()
    before = [g.get_state().clone() for g in rnd._noise]
    sampler = rnd.sampling
    rnd.begin_step()
    assert sum(drawn) * 8 >= 2 * 128  # >= 128 fresh bits for each of the two streams
    assert 16 in drawn and rnd.sampling is not sampler  # a new 128-bit Philox key
    after = [g.get_state() for g in rnd._noise]
    assert all(not torch.equal(x, y) for x, y in zip(before, after))

    steps = []
    real_begin = StepRandomness.begin_step

    def count(self):
        steps.append(self.secure)
        real_begin(self)

    monkeypatch.setattr(StepRandomness, "begin_step", count)
    report = _dpsgd().fit(table, noise=NoiseSource.secure())
    assert steps.count(True) >= report.training["steps"] and False not in steps


def test_a_rekeyed_cpu_generator_is_driven_by_its_whole_new_state():
    g, twin = torch.Generator(), torch.Generator()
    dpsgd_randomness.rekey(g)
    twin.set_state(g.get_state())
    first = torch.rand(2000, generator=g, dtype=torch.float64)
    assert torch.equal(first, torch.rand(2000, generator=twin, dtype=torch.float64))
    dpsgd_randomness.rekey(twin)  # a different key: a different stream
    assert not torch.equal(torch.rand(50, generator=g), torch.rand(50, generator=twin))
    z = torch.normal(0.0, 1.0, size=(200_000,), generator=g, dtype=torch.float64)
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02


def test_noise_has_the_requested_scale_and_seeded_mode_is_reproducible():
    ref = torch.zeros(100_000)
    a, b = StepRandomness(CPU, seeds=[5, 6]), StepRandomness(CPU, seeds=[5, 6])
    na, nb = a.gaussian(2.5, ref), b.gaussian(2.5, ref)
    assert torch.equal(na, nb)
    assert np.array_equal(poisson_indices(1000, 0.25, a), poisson_indices(1000, 0.25, b))
    assert abs(float(na.std()) - 2.5) < 0.05 and abs(float(na.mean())) < 0.05
    assert torch.equal(a.gaussian(0.0, ref), ref)


def test_seeded_dpsgd_fits_are_reproducible(table):
    one, two = _dpsgd(), _dpsgd()
    one.fit(table, noise=NoiseSource.seeded(5))
    two.fit(table, noise=NoiseSource.seeded(5))
    for p, q in zip(one.model.parameters(), two.model.parameters()):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------- 2. private logs
def test_training_loss_and_speed_reach_only_the_private_logger(table, caplog):
    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        _dpsgd(log_loss=True).fit(table, noise=NoiseSource.seeded(1))
    private = [r for r in caplog.records if r.name == "synthrelease.private.dpsgd"]
    assert any("loss" in r.getMessage() for r in private)
    public = "\n".join(r.getMessage() for r in _public(caplog.records))
    assert "epsilon" in public and "loss" not in public and "rows/s" not in public
    assert str(ROWS) not in public


def test_nan_abort_step_goes_to_the_private_log_not_the_error(table, monkeypatch, caplog):
    real = MADE.nll
    monkeypatch.setattr(MADE, "nll", lambda self, codes: real(self, codes) * float("nan"))
    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        with pytest.raises(GeneratorError, match="NaN") as info:
            _dpsgd().fit(table, noise=NoiseSource.seeded(0))
    assert "step" not in str(info.value) and not any(c.isdigit() for c in str(info.value))
    private = [r for r in caplog.records if r.name == "synthrelease.private.dpsgd"]
    assert any("by step 1" in r.getMessage() for r in private)
    assert not any("NaN" in r.getMessage() for r in _public(caplog.records))


def test_marginal_generators_log_run_times_only_privately(caplog):
    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6).fit(
            SensitiveTable(make_table(ROWS), label="t"), noise=NoiseSource.seeded(0)
        )
        AIMGenerator(COLUMNS, epsilon=1.0, delta=1e-6, params={"rounds": 8}).fit(
            SensitiveTable(make_table(ROWS), label="t"), noise=NoiseSource.seeded(0)
        )
    public = "\n".join(r.getMessage() for r in _public(caplog.records))
    assert "mst: fitted" in public and "aim: fitted" in public
    assert " s," not in public and "fitted in" not in public and str(ROWS) not in public
    private = {r.name for r in caplog.records if "fitted in" in r.getMessage()}
    assert private == {"synthrelease.private.mst", "synthrelease.private.aim"}


def _log_calls(path: Path):
    """(logger variable, message) of every ``<name>.<level>("...", ...)`` call."""
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"debug", "info", "warning", "error", "exception"}
            and isinstance(node.func.value, ast.Name)
            and node.args
            and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))
        ):
            yield node.func.value.id, ast.unparse(node.args[0])


@pytest.mark.parametrize("module", ["evaluation", "real", "sdmetrics_reports", "gate"])
def test_validators_log_failed_real_data_checks_only_privately(module):
    import synthrelease.validators as validators

    path = Path(validators.__file__).parent / f"{module}.py"
    calls = list(_log_calls(path))
    failing = [(who, msg) for who, msg in calls if "failed" in msg or "failing" in msg]
    assert failing and all(who == "private_logger" for who, _ in failing), failing
    source = path.read_text()
    assert f'private_logger = logging.getLogger("synthrelease.private.{module}")' in source


def test_the_gate_logs_failed_check_names_privately(caplog):
    from synthrelease.spec import Gate
    from synthrelease.validators.gate import evaluate_gate

    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        verdict = evaluate_gate(
            figures={"tvd_1way": 0.9},
            expectations=None,
            gate=Gate(max_tvd_1way=0.1, expectations=False),
        )
    assert not verdict.passed
    public = [r.getMessage() for r in _public(caplog.records) if "gate" in r.getMessage()]
    assert public == ["gate: FAILED"]
    assert any(
        "tvd_1way" in r.getMessage()
        for r in caplog.records
        if r.name == "synthrelease.private.gate"
    )


# --------------------------------------------------------------------------- 3. AIM parameters
AIM_COLUMNS = {f"c{i}": COL.validate_python({"type": "boolean"}) for i in range(10)}


@pytest.mark.parametrize("rounds", [1, 5, 9])
def test_aim_refuses_too_few_rounds_when_built(rounds):
    """0.9 x 10 columns: 9 rounds or fewer would overspend the 1-way step and crash."""
    with pytest.raises(GeneratorError, match="'rounds' must be at least 10 for 10 columns"):
        AIMGenerator(AIM_COLUMNS, epsilon=1.0, delta=1e-6, params={"rounds": rounds})
    with pytest.raises(GeneratorError, match="'rounds'"):
        build_generator(
            GeneratorSpec(name="aim", params={"rounds": rounds}),
            AIM_COLUMNS,
            epsilon=1.0,
            delta=1e-6,
        )
    with pytest.raises(GeneratorError, match="'rounds' must be at least 6 for 10 columns"):
        AIMGenerator(
            AIM_COLUMNS, epsilon=1.0, delta=1e-6, params={"rounds": 5, "measure_share": 0.5}
        )


def test_aim_with_the_fewest_allowed_rounds_fits_within_budget():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({n: rng.random(500) < 0.5 for n in AIM_COLUMNS})
    gen = AIMGenerator(
        AIM_COLUMNS, epsilon=1.0, delta=1e-6, params={"rounds": 10, "iters": 5, "final_iters": 5}
    )
    report = gen.fit(SensitiveTable(frame, label="t"), noise=NoiseSource.seeded(0))
    assert report.epsilon <= 1.0


def test_aim_refuses_a_model_size_that_cannot_hold_the_1way_marginals():
    with pytest.raises(GeneratorError, match="'max_model_size'") as info:
        AIMGenerator(COLUMNS, epsilon=1.0, delta=1e-6, params={"max_model_size": 1e-5})
    assert "cells" in str(info.value)


# --------------------------------------------------------------------------- 4. public grid
def test_dpsgd_publishes_the_dp_row_count_on_the_integer_grid(table, tmp_path):
    gen = _dpsgd()
    report = gen.fit(table, noise=NoiseSource.seeded(2))
    rows = report.training["dp_row_count"]
    assert float(rows).is_integer() and abs(rows - ROWS) < 200
    assert report.training["expected_batch_size"] == report.training["sample_rate"] * rows
    gen.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "generator.json").read_text())
    assert float(saved["report"]["training"]["dp_row_count"]).is_integer()


@pytest.mark.parametrize("cls", [MSTGenerator, AIMGenerator])
def test_marginal_generators_store_an_integer_row_estimate(cls, tmp_path):
    params = {"rounds": 8} if cls is AIMGenerator else {}
    gen = cls(COLUMNS, epsilon=1.0, delta=1e-6, params=params)
    gen.fit(SensitiveTable(make_table(ROWS), label="t"), noise=NoiseSource.seeded(3))
    assert float(gen.estimated_rows).is_integer() and abs(gen.estimated_rows - ROWS) < 300
    gen.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "generator.json").read_text())["state"]
    assert float(state["total"]).is_integer()


def test_public_count_rounds_and_refuses_non_finite_values():
    assert dp_domain.public_count(12.49) == 12.0 and dp_domain.public_count(-3.2) == 1.0
    with pytest.raises(GeneratorError):
        dp_domain.public_count(float("nan"))


@pytest.mark.parametrize("seed", range(5))
def test_dp_bounds_are_points_of_the_public_grid(seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(3, 40, 4000), "n": rng.integers(-70, 900, 4000)})
    t = SensitiveTable(frame, label="t")
    for name, integer in (("x", False), ("n", True)):
        lo, hi = dp_domain.dp_bounds(
            t, name, rho=0.05, noise=NoiseSource.seeded(seed), integer=integer
        )
        assert dp_domain.on_bounds_grid(lo, integer=integer)
        assert dp_domain.on_bounds_grid(hi, integer=integer)
    columns = {"x": COL.validate_python({"type": "numerical"})}
    resolved, _ = dp_domain.resolve_columns(
        t, columns, rho_each=0.05, delta_each=1e-7, noise=NoiseSource.seeded(seed)
    )
    assert dp_domain.on_bounds_grid(resolved["x"].lower)
    assert dp_domain.on_bounds_grid(resolved["x"].upper)
    assert not dp_domain.on_bounds_grid(resolved["x"].upper * (1 + 1e-12))


@pytest.mark.parametrize("cls", [MSTGenerator, AIMGenerator])
def test_dp_quantile_edges_are_points_of_the_declared_fine_grid(cls):
    params = {"quantile_edges": ["age", "score"], **({"rounds": 8} if cls is AIMGenerator else {})}
    gen = cls(COLUMNS, epsilon=1.0, delta=1e-6, params=params)
    gen.fit(SensitiveTable(make_table(ROWS), label="t"), noise=NoiseSource.seeded(4))
    assert gen.learned_edges
    for name, edges in gen.learned_edges.items():
        grid = set(dp_edges.grid_boundaries(name, COLUMNS[name]).tolist())
        assert set(edges) <= grid
        assert gen.resolved_columns[name].edges == edges
