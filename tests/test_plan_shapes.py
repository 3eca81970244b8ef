"""`synthrelease plan SPEC --measure EPSILON`: the table's 1-way shapes under DP.

The measurement is charged to the table's ledger before a row is read (a refused charge
reads nothing), its noise is the Gaussian mechanism's for the charge (two neighbouring
tables move the noiseless answer by exactly sqrt(columns) in L2), the stand-in takes the
measured shapes, and every later plan of the same domain uses them and says so.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from synthrelease.errors import BudgetExceededError, SpecError
from synthrelease.generators.accounting import cdp_rho
from synthrelease.generators.marginal.shapes import measure_shapes, shapes_sigma
from synthrelease.generators.noise import NoiseSource
from synthrelease.planning import make_plan
from synthrelease.planning.shapes import load_shapes, measure, shapes_path
from synthrelease.planning.simulate import discretiser_for
from synthrelease.planning.standin import stand_in
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import load_spec
from tests.test_cli import _ledger_entries, _run

COLUMNS = {
    # 97% of the rows in the lowest of 16 bins: the prior cannot know that
    "amount": {"type": "numerical", "lower": 0, "upper": 100000},
    "age": {"type": "numerical", "lower": 0, "upper": 100, "integer": True},
    "colour": {"type": "categorical", "categories": ["red", "green", "blue"]},
    "smoker": {"type": "boolean"},
}


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = np.where(rng.random(n) < 0.97, rng.uniform(0, 5000, n), rng.uniform(0, 1e5, n))
    colour = rng.choice(["red", "green", "blue"], size=n, p=[0.6, 0.3, 0.1])
    return pd.DataFrame(
        {
            "amount": amount.round(2),
            "age": rng.integers(18, 90, size=n),
            "colour": colour,
            "smoker": np.where(colour == "red", rng.random(n) < 0.7, rng.random(n) < 0.1),
        }
    )


def _write(frame: pd.DataFrame, folder, spec_factory, *, extra_line=None, **overrides):
    """The table as a CSV in ``folder`` (plus a raw line) and its spec (the conftest
    factory's, with this table, its own workspace, MST and a declared row count)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "amounts.csv"
    frame.to_csv(csv, index=False)
    if extra_line is not None:
        with csv.open("a") as fh:
            fh.write(extra_line + "\n")
    raw = {
        "name": "amounts",
        "source": {"kind": "csv", "path": str(csv)},
        "schema": {"columns": COLUMNS},
        "privacy": {"epsilon": 1.0, "delta": 1e-6, "budget": {"epsilon": 10.0, "delta": 1e-5}},
        "holdout": {"fraction": 0.2},
        "expected_rows": 3000,
        "gate": {},
        "workspace": {"path": str(folder / "ws")},
    }
    return spec_factory(**{**raw, **overrides})


@pytest.fixture
def shapes_spec(tmp_path, spec_factory):
    """A spec of a table with a spiky column (declared row count, MST: quick plans)."""

    def make(budget_epsilon: float = 10.0, **overrides):
        privacy = {
            "epsilon": 1.0,
            "delta": 1e-6,
            "budget": {"epsilon": budget_epsilon, "delta": 1e-5},
        }
        folder = tmp_path / "table"
        return _write(_table(), folder, spec_factory, **{"privacy": privacy, **overrides})

    return make


def test_measure_is_charged_and_later_plans_use_it(shapes_spec):
    path = shapes_spec()
    spec = load_spec(path)
    assert load_shapes(spec) is None
    prior = make_plan(spec)
    assert prior.shapes == "prior" and "--measure" in " ".join(prior.notes)

    shapes = measure(spec, epsilon=2.0, seed=3)
    [entry] = _ledger_entries(path)
    assert (entry.dataset, entry.epsilon, entry.delta) == ("amounts", 2.0, 1e-6)
    assert entry.status == "spent" and entry.run_id == shapes.run_id
    assert shapes_path(spec).is_file()
    # the charge is the noise: the ledger's (epsilon, delta) give rho, rho and d give sigma
    assert shapes.rho == cdp_rho(epsilon=entry.epsilon, delta=entry.delta)
    assert shapes.sigma == shapes_sigma(rho=shapes.rho, columns=len(COLUMNS))
    stored = [x for counts in shapes.counts.values() for x in counts]
    assert all(float(x).is_integer() for x in stored)  # public values on a grid

    again = load_shapes(load_spec(path))  # what `plan` and `run` find later
    assert again is not None and again.run_id == shapes.run_id
    spike = again.marginal("amount")
    assert spike.max() > 0.9 and spike.sum() == pytest.approx(1.0)
    assert abs(again.rows - 3000) < 5 * shapes.sigma  # the DP count: mean of the totals

    measured = make_plan(spec, shapes=again)
    assert measured.shapes == "dp"
    assert any(shapes.run_id in note for note in measured.notes)
    # the spike's share of the sampling error is small: the plan sees it, the prior not
    assert measured.floor["tvd_1way"] < prior.floor["tvd_1way"]


def test_a_refused_charge_reads_no_row(shapes_spec):
    """The budget refuses the charge: the source is never opened (it is gone)."""
    path = shapes_spec(budget_epsilon=1.0)
    spec = load_spec(path)
    spec.source.path.unlink()  # a read would fail with a source error, not a budget one
    with pytest.raises(BudgetExceededError):
        measure(spec, epsilon=1.5, seed=0)
    assert _ledger_entries(path) == []
    assert load_shapes(spec) is None


def test_noise_is_the_charge_s_gaussian_mechanism(shapes_spec):
    """Two neighbouring tables (one row removed), the same seed: the noisy answers
    differ by the noiseless ones' difference, which is one count in one cell of each
    column: L2 norm sqrt(columns), the sensitivity sigma is set for."""
    spec = load_spec(shapes_spec())
    disc = discretiser_for(spec)
    rho = cdp_rho(epsilon=1.0, delta=1e-6)
    whole = _table()
    answers = []
    for frame in (whole, whole.iloc[1:]):
        noisy, sigma, line = measure_shapes(
            [SensitiveTable(frame, label="t")], disc, rho=rho, noise=NoiseSource.seeded(5)
        )
        answers.append(np.concatenate([noisy[n] for n in disc.names]))
    assert line.rho == rho and line.mechanism == "gaussian"
    d = len(disc.names)
    assert sigma == pytest.approx(math.sqrt(d / (2 * rho)))
    assert sigma >= math.sqrt(d / (2 * rho))  # rounded up, never down
    diff = answers[0] - answers[1]
    assert np.linalg.norm(diff) == pytest.approx(math.sqrt(d))
    assert sorted(np.round(diff, 9)[np.round(diff, 9) != 0]) == [1.0] * d

    # and the noise has that scale (many cells: 20 seeds)
    codes = disc.encode(whole)
    exact = np.concatenate([np.bincount(codes[n], minlength=s) for n, s in disc.sizes.items()])
    errors = []
    for seed in range(20):
        halves = [
            SensitiveTable(whole.iloc[:1000], label="t"),
            SensitiveTable(whole.iloc[1000:], label="t"),
        ]
        noisy, _, _ = measure_shapes(halves, disc, rho=rho, noise=NoiseSource.seeded(seed))
        errors.append(np.concatenate([noisy[n] for n in disc.names]) - exact)
    assert np.std(np.concatenate(errors)) == pytest.approx(sigma, rel=0.1)
    assert shapes_sigma(rho=rho, columns=d) == sigma


def test_a_changed_domain_does_not_use_the_measurement(shapes_spec):
    spec = load_spec(shapes_spec())
    measure(spec, epsilon=1.0, seed=0)
    assert load_shapes(spec) is not None
    other_bins = load_spec(shapes_spec(generator={"name": "mst", "params": {"bins": 8}}))
    columns = {**COLUMNS, "age": {**COLUMNS["age"], "upper": 120}}
    other_bounds = load_spec(shapes_spec(schema={"columns": columns}))
    assert load_shapes(other_bins) is None
    assert load_shapes(other_bounds) is None


def test_stand_in_takes_the_given_shapes_and_keeps_its_dependence(shapes_spec):
    disc = discretiser_for(load_spec(shapes_spec()))
    size = disc.sizes["amount"]
    given = np.zeros(size)
    given[[0, 3]] = [0.8, 0.2]
    plain = stand_in(disc, seed=4)
    shaped = stand_in(disc, seed=4, shapes={"amount": given})
    assert shaped.parents == plain.parents and shaped.order == plain.order
    rows = shaped.codes(50_000, np.random.default_rng(0))
    share = np.bincount(rows["amount"], minlength=size) / len(rows)
    if shaped.parents[disc.names.index("amount")] is None:
        assert np.abs(share - given).sum() / 2 < 0.02
    else:  # a parent tilts it, but only where the shape has mass
        assert share[[i for i in range(size) if i not in (0, 3)]].sum() == 0
    with pytest.raises(SpecError, match="amount"):
        stand_in(disc, seed=4, shapes={"amount": np.ones(size + 1)})


def test_cli_measures_and_says_what_it_charged(shapes_spec, capsys, monkeypatch):
    path = shapes_spec()
    monkeypatch.delenv("SYNTHRELEASE_TEST_NOISE", raising=False)
    code, _, err = _run(capsys, "plan", str(path), "--measure", "1", "--seed", "2")
    assert code == 2 and "SYNTHRELEASE_TEST_NOISE" in err
    assert _ledger_entries(path) == []  # the seed was refused before any charge

    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    code, out, _ = _run(capsys, "plan", str(path), "--measure", "1", "--seed", "2")
    assert code == 0, out
    assert "charged epsilon 1, delta 1e-06 to 'amounts'" in out
    assert "1-way shapes of 'amounts' measured under DP (epsilon 1" in out
    assert "NOT PRIVATE: seeded noise" in out
    [entry] = _ledger_entries(path)
    # a later plan reads nothing and charges nothing, and still uses the measurement
    code, out, _ = _run(capsys, "plan", str(path))
    assert code == 0 and "1-way shapes measured under DP" in out
    assert len(_ledger_entries(path)) == 1


def test_a_spec_without_a_row_count_plans_on_the_dp_count(shapes_spec):
    path = shapes_spec(expected_rows=None)
    spec = load_spec(path)
    shapes = measure(spec, epsilon=1.0, seed=1)
    plan = make_plan(spec, shapes=shapes)
    assert plan.rows == shapes.rows and plan.rows_provenance == "a DP count (plan --measure)"


@pytest.mark.parametrize(
    "odd",
    [
        {"amount": 5e6, "age": 40, "colour": "red", "smoker": True},  # clipped
        {"amount": 10.0, "age": 40, "colour": "purple", "smoker": True},  # dropped
        {"amount": None, "age": 40, "colour": "red", "smoker": True},  # dropped (not nullable)
    ],
    ids=["clipped", "unknown-category", "null"],
)
def test_neighbouring_tables_through_the_whole_path(tmp_path, spec_factory, odd):
    """The two-table test, end to end (source, domain rules, counting): the same seed on
    a table and on it with one row more (one the rules clip or drop) gives stored
    counts that differ by at most one in one cell of each column."""
    base = _table(1000)
    plus = pd.concat([base, pd.DataFrame([odd]).astype({"amount": "float64"})], ignore_index=True)
    answers = []
    for name, frame in (("without", base), ("with", plus)):
        spec = load_spec(_write(frame, tmp_path / name, spec_factory))
        shapes = measure(spec, epsilon=1.0, seed=11)
        answers.append(np.concatenate([shapes.counts[c] for c in COLUMNS]))
    diff = answers[1] - answers[0]
    assert set(np.unique(diff)) <= {0.0, 1.0}
    assert np.linalg.norm(diff) <= math.sqrt(len(COLUMNS))


def test_a_failure_after_the_read_is_charged_and_says_one_fixed_sentence(
    tmp_path, spec_factory, capsys, monkeypatch
):
    """A row the CSV reader cannot parse ends the measurement after the charge: exit 4,
    one sentence that holds no value of the table, the entry spent, no shapes stored,
    the reason kept private."""
    path = _write(
        _table(500), tmp_path / "bad", spec_factory, extra_line="1,2,red,true,SECRET-VALUE-42"
    )
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    code, out, err = _run(capsys, "plan", str(path), "--measure", "0.5", "--seed", "1")
    assert code == 4
    assert "failed after reading the table" in err and "charged" in err
    assert "SECRET" not in out + err and "ParserError" not in out + err
    [entry] = _ledger_entries(path)
    assert entry.status == "spent" and entry.epsilon == 0.5
    assert load_shapes(load_spec(path)) is None
    private = next((tmp_path / "bad" / "ws" / "runs").iterdir())
    assert "SourceError" in (private / "failure.txt").read_text()


def test_seeded_noise_is_refused_outside_tests_and_labelled_inside(shapes_spec, monkeypatch):
    path = shapes_spec()
    spec = load_spec(path)
    monkeypatch.delenv("SYNTHRELEASE_TEST_NOISE", raising=False)
    with pytest.raises(SpecError, match="NOT PRIVATE"):
        measure(spec, epsilon=1.0, seed=0)
    assert _ledger_entries(path) == []
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    shapes = measure(spec, epsilon=1.0, seed=0)
    assert shapes.noise == "seeded" and "NOT PRIVATE" in shapes.describe()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--measure", "0"], "epsilon in"),
        (["--measure", "inf"], "epsilon in"),
        (["--measure", "1", "--measure-delta", "1"], "delta in (0, 1)"),
        (["--seed", "1"], "go with --measure"),
        (["--again"], "go with --measure"),
        (["--measure", "1", "--rows", "0"], "positive row count"),
    ],
)
def test_bad_arguments_are_refused_before_any_charge(shapes_spec, capsys, argv, message):
    path = shapes_spec()
    code, _, err = _run(capsys, "plan", str(path), *argv)
    assert code == 2 and message in err
    assert _ledger_entries(path) == []


def test_measuring_again_needs_again_and_another_table_never_uses_it(shapes_spec, capsys):
    path = shapes_spec()
    code, _, _ = _run(capsys, "plan", str(path), "--measure", "1", "--seed", "1", "--json")
    assert code == 0
    code, _, err = _run(capsys, "plan", str(path), "--measure", "1", "--seed", "1")
    assert code == 2 and "--again" in err and len(_ledger_entries(path)) == 1
    code, out, err = _run(
        capsys, "plan", str(path), "--measure", "0.5", "--seed", "2", "--again", "--json"
    )
    assert code == 0 and "charged epsilon 0.5" in err
    assert json.loads(out)["shapes"] == "dp"  # stdout is one JSON document
    assert len(_ledger_entries(path)) == 2
    # the same schema under another table's name (or source) is another measurement
    renamed = load_spec(shapes_spec(name="amounts-copy"))
    assert load_shapes(renamed) is None


def test_run_prints_the_plan_made_on_the_measured_shapes(shapes_spec, capsys):
    gate = {"max_tvd_1way": 0.9, "max_tvd_2way": 0.001, "max_exact_copy_excess": 0.05}
    path = shapes_spec(gate=gate, expected_rows=None)
    code, out, _ = _run(capsys, "run", str(path), "--engine", "direct")
    assert code != 2 and out.startswith("plan: none")  # no row count, no measurement
    before = len(_ledger_entries(path))
    _run(capsys, "plan", str(path), "--measure", "1", "--seed", "3")
    code, out, err = _run(capsys, "run", str(path), "--engine", "direct")
    assert code == 2 and "cannot be expected to pass" in err
    assert "a DP count (plan --measure)" in out and "measured under DP" in out
    assert len(_ledger_entries(path)) == before + 1  # the measurement only
