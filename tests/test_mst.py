"""MST generator, its noise source and the generator registry, on small seeded tables."""

from __future__ import annotations

import itertools
import json
import logging
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from synthrelease.errors import GeneratorError, PrivacyError, SchemaMismatchError
from synthrelease.generators import GENERATORS, MSTGenerator, build_generator, load_generator
from synthrelease.generators.accounting import cdp_rho
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.mst_estimate import tree_marginals
from synthrelease.generators.noise import NoiseSource, make_noise
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, GeneratorSpec, Privacy

ROWS = 2987  # an odd count, so that a leak of it into a log line is easy to spot
COLOURS = ("red", "green", "blue")
PLANTED = {"red": "warm", "green": "cool", "blue": "cool", "other": "neutral"}

COLUMNS = {
    name: TypeAdapter(Column).validate_python(raw)
    for name, raw in {
        "age": {"type": "numerical", "lower": 0, "upper": 100, "integer": True, "bins": 10},
        "income": {"type": "numerical", "lower": 0.0, "upper": 200000.0, "bins": 8},
        "colour": {"type": "categorical", "categories": list(COLOURS), "other": "other"},
        "tone": {"type": "categorical", "categories": ["warm", "cool", "neutral"]},
        "city": {"type": "categorical", "categories": ["a", "b", "c", "d"], "nullable": True},
        "member": {"type": "boolean"},
    }.items()
}


def _frame(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice([*COLOURS, "purple", "teal"], size=rows, p=[0.4, 0.3, 0.2, 0.06, 0.04])
    bucket = np.where(np.isin(colour, COLOURS), colour, "other")
    tone = np.array([PLANTED[c] for c in bucket], dtype=object)
    flip = rng.random(rows) < 0.05
    tone[flip] = rng.choice(["warm", "cool", "neutral"], size=int(flip.sum()))
    age = rng.integers(18, 90, size=rows)
    income = np.clip(age * 1500 + rng.normal(0, 15000, rows), 0, 200000)
    city = rng.choice(["a", "b", "c", "d", None], size=rows, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    member = rng.random(rows) < np.where(age > 50, 0.8, 0.2)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "colour": colour,
            "tone": tone,
            "city": city,
            "member": member,
        }
    )


def _table(seed: int = 0) -> SensitiveTable:
    return SensitiveTable(_frame(seed), label="toy")


def _fit(epsilon: float = 1.0, seed: int = 7, **params) -> MSTGenerator:
    gen = MSTGenerator(COLUMNS, epsilon=epsilon, delta=1e-6, params=params)
    gen.fit(_table(), noise=NoiseSource.seeded(seed))
    return gen


@pytest.fixture(scope="module")
def fitted() -> MSTGenerator:
    return _fit()


@pytest.fixture(scope="module")
def accurate() -> MSTGenerator:
    return _fit(epsilon=50.0)


def _tvd(a: pd.DataFrame, b: pd.DataFrame, cols: tuple[str, ...], sizes: dict[str, int]) -> float:
    fa, fb = np.zeros(len(a), np.int64), np.zeros(len(b), np.int64)
    for c in cols:
        fa, fb = fa * sizes[c] + a[c].to_numpy(), fb * sizes[c] + b[c].to_numpy()
    m = math.prod(sizes[c] for c in cols)
    return 0.5 * float(
        np.abs(np.bincount(fa, minlength=m) / len(a) - np.bincount(fb, minlength=m) / len(b)).sum()
    )


# --------------------------------------------------------------------------- fitting
def test_fit_with_seeded_noise_is_reproducible(fitted: MSTGenerator) -> None:
    again = _fit()
    assert again.report == fitted.report
    assert again.model.edges == fitted.model.edges
    for x, y in zip(again.model.edge_marginals, fitted.model.edge_marginals):
        np.testing.assert_array_equal(x, y)
    pd.testing.assert_frame_equal(
        again.sample(500, rng=np.random.default_rng(1)),
        fitted.sample(500, rng=np.random.default_rng(1)),
    )


def test_privacy_report_sums_to_the_requested_budget(fitted: MSTGenerator) -> None:
    report = fitted.report
    assert [line.step for line in report.lines] == [
        "1-way marginals",
        "tree selection",
        "2-way marginals",
    ]
    assert math.fsum(line.rho for line in report.lines) == pytest.approx(report.rho, rel=1e-12)
    assert report.rho == pytest.approx(cdp_rho(epsilon=1.0, delta=1e-6), rel=1e-9)
    assert report.epsilon <= 1.0
    assert report.epsilon == pytest.approx(1.0, rel=1e-9)
    assert report.delta == 1e-6
    json.dumps(report.to_dict())


def test_output_respects_the_declared_domain(fitted: MSTGenerator) -> None:
    out = fitted.sample(4000, rng=np.random.default_rng(2))
    assert list(out.columns) == list(COLUMNS)
    assert len(out) == 4000
    for name in ("age", "income"):
        spec = COLUMNS[name]
        assert out[name].notna().all()
        assert out[name].min() >= spec.lower and out[name].max() <= spec.upper
    assert (out["age"] == np.floor(out["age"])).all()
    assert set(out["colour"]) <= set(COLUMNS["colour"].labels)
    assert set(out["tone"]) <= set(COLUMNS["tone"].labels)
    assert set(out["city"].dropna()) <= set(COLUMNS["city"].labels)
    assert out["member"].notna().all()
    assert not {"purple", "teal"} & set(out["colour"])  # rare raw values never reappear


def test_nulls_survive_as_a_domain_value(accurate: MSTGenerator) -> None:
    out = accurate.sample(6000, rng=np.random.default_rng(3))
    share = out["city"].isna().mean()
    assert 0.02 < share < 0.09  # planted: 5 %


def test_large_epsilon_recovers_marginals_and_the_planted_dependency(
    accurate: MSTGenerator,
) -> None:
    names = list(COLUMNS)
    assert (names.index("colour"), names.index("tone")) in accurate.model.edges
    disc = Discretiser(COLUMNS)
    real = disc.encode(_frame())
    synth = disc.encode(accurate.sample(ROWS, rng=np.random.default_rng(4)))
    pairs = list(itertools.combinations(names, 2))
    tvd2 = {p: _tvd(real, synth, p, disc.sizes) for p in pairs}
    assert np.mean(list(tvd2.values())) < 0.08
    assert tvd2["colour", "tone"] < 0.05
    decoded = accurate.sample(ROWS, rng=np.random.default_rng(5))
    agree = (decoded["colour"].map(PLANTED) == decoded["tone"]).mean()
    assert agree > 0.9  # planted: ~0.97


def test_fit_uses_no_global_random_state() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    gen = _fit()
    gen.sample(100, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_fit_logs_neither_the_row_count_nor_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="synthrelease"):
        _fit()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "mst: fitted" in text
    assert str(ROWS) not in text
    assert "purple" not in text and "teal" not in text


def test_sensitive_table_is_never_pickled(tmp_path: Path) -> None:
    table = _table()
    with pytest.raises(PrivacyError):
        pickle.dumps(table)
    gen = MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6, params={})
    gen.fit(table, noise=NoiseSource.seeded(7))  # would raise had anything pickled it
    gen.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "arrays.npz",
        "generator.json",
    ]
    with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_save_load_round_trip_samples_identically(fitted: MSTGenerator, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    for loaded in (MSTGenerator.load(tmp_path / "m"), load_generator(tmp_path / "m")):
        assert isinstance(loaded, MSTGenerator)
        assert loaded.report == fitted.report
        assert list(loaded.columns) == list(COLUMNS)
        pd.testing.assert_frame_equal(
            loaded.sample(700, rng=np.random.default_rng(9)),
            fitted.sample(700, rng=np.random.default_rng(9)),
        )


def test_loading_garbage_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError):
        load_generator(tmp_path / "nothing-here")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "generator.json").write_text('{"generator": "mst", "format_version": 1}')
    np.savez(tmp_path / "bad" / "arrays.npz", x=np.zeros(2))
    with pytest.raises(GeneratorError, match="malformed"):
        load_generator(tmp_path / "bad")


def test_single_and_two_column_tables() -> None:
    for names, steps in (
        (["colour"], ["1-way marginals"]),
        (["colour", "tone"], ["1-way marginals", "2-way marginals"]),
    ):
        cols = {n: COLUMNS[n] for n in names}
        gen = MSTGenerator(cols, epsilon=2.0, delta=1e-6)
        report = gen.fit(SensitiveTable(_frame()[names], label="t"), noise=NoiseSource.seeded(1))
        assert [line.step for line in report.lines] == steps
        assert report.epsilon <= 2.0
        assert list(gen.sample(50, rng=np.random.default_rng(0)).columns) == names


def test_tree_marginals_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    sizes, edges = [3, 4, 2, 5, 3], [(0, 1), (1, 2), (1, 3), (0, 4)]
    logs = [rng.normal(scale=2.0, size=(sizes[a], sizes[b])) for a, b in edges]
    joint = np.zeros(sizes)
    for (a, b), table in zip(edges, logs):
        shape = [1] * len(sizes)
        shape[a], shape[b] = sizes[a], sizes[b]
        joint = joint + table.reshape(shape)
    joint = np.exp(joint - joint.max())
    joint *= 100.0 / joint.sum()
    for (a, b), got in zip(edges, tree_marginals(sizes, edges, logs, 100.0)):
        other = tuple(i for i in range(len(sizes)) if i not in (a, b))
        np.testing.assert_allclose(got, joint.sum(axis=other), rtol=1e-10)


# --------------------------------------------------------------------------- refusals
def test_fit_refuses_a_numpy_generator_as_noise() -> None:
    gen = MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6)
    with pytest.raises(GeneratorError):
        gen.fit(_table(), noise=np.random.default_rng(0))  # type: ignore[arg-type]


def test_missing_column_and_out_of_domain_value_are_named_not_shown() -> None:
    gen = MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6)
    with pytest.raises(SchemaMismatchError, match="member"):
        gen.fit(
            SensitiveTable(_frame().drop(columns="member"), label="t"), noise=NoiseSource.seeded(0)
        )
    frame = _frame()
    frame.loc[3, "age"] = 4242
    with pytest.raises(SchemaMismatchError, match="age") as err:
        gen.fit(SensitiveTable(frame, label="t"), noise=NoiseSource.seeded(0))
    assert "4242" not in str(err.value)


def test_sample_before_fit_and_bad_row_counts() -> None:
    gen = MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6)
    with pytest.raises(GeneratorError, match="not fitted"):
        gen.sample(10, rng=np.random.default_rng(0))


def test_zero_rows(fitted: MSTGenerator) -> None:
    out = fitted.sample(0, rng=np.random.default_rng(0))
    assert list(out.columns) == list(COLUMNS) and len(out) == 0
    with pytest.raises(GeneratorError):
        fitted.sample(-1, rng=np.random.default_rng(0))


def test_registry_and_params() -> None:
    assert GENERATORS["mst"] is MSTGenerator
    gen = build_generator(
        GeneratorSpec(name="mst", params={"bins": 16, "iters": 200}),
        COLUMNS,
        epsilon=1.0,
        delta=1e-6,
    )
    assert isinstance(gen, MSTGenerator) and gen.params.bins == 16
    with pytest.raises(GeneratorError, match="bogus"):
        build_generator(
            GeneratorSpec(name="mst", params={"bogus": 1}), COLUMNS, epsilon=1.0, delta=1e-6
        )
    with pytest.raises(GeneratorError, match="iters"):
        build_generator(
            GeneratorSpec(name="mst", params={"iters": 0}), COLUMNS, epsilon=1.0, delta=1e-6
        )
    assert GENERATORS["aim"].name == "aim"  # AIM is registered too (tests/test_aim.py)
    assert (
        build_generator(GeneratorSpec(name="aim"), COLUMNS, epsilon=1.0, delta=1e-6).name == "aim"
    )


# --------------------------------------------------------------------------- noise
def test_secure_noise_has_the_right_distributions() -> None:
    noise = NoiseSource.secure()
    z = noise.normal(3.0, 200_000)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 3.0) < 0.05
    g = noise.gumbel(200_000)
    assert abs(g.mean() - np.euler_gamma) < 0.02 and abs(g.var() - np.pi**2 / 6) < 0.05
    u = noise.uniform((100, 7))
    assert u.shape == (100, 7) and (u >= 0).all() and (u < 1).all()
    assert noise.normal(1.0, 5).shape == (5,)
    assert not np.array_equal(noise.normal(1.0, 8), noise.normal(1.0, 8))


def test_seeded_noise_and_post_processing_rng_are_reproducible() -> None:
    a, b = NoiseSource.seeded(5), NoiseSource.seeded(5)
    np.testing.assert_array_equal(a.normal(2.0, 10), b.normal(2.0, 10))
    np.testing.assert_array_equal(a.gumbel(4), b.gumbel(4))
    np.testing.assert_array_equal(
        a.post_processing_rng().random(3), b.post_processing_rng().random(3)
    )
    with pytest.raises(GeneratorError):
        a.normal(-1.0, 3)


def test_make_noise_follows_the_spec() -> None:
    budget = {"epsilon": 10, "delta": 1e-5}
    assert make_noise(Privacy(epsilon=1, delta=1e-6, budget=budget)).is_secure
    seeded = make_noise(Privacy(epsilon=1, delta=1e-6, budget=budget, noise="seeded", seed=3))
    assert seeded.mode == "seeded"


def test_dp_quantile_edges_are_charged_and_follow_the_data(tmp_path: Path) -> None:
    """Opt-in DP quantile edges (shared with AIM): one budget line of quantile_share, the
    lines still sum to the budget, edges sit where the data is, and survive save/load."""
    gen = MSTGenerator(COLUMNS, epsilon=2.0, delta=1e-6, params={"quantile_edges": ["income"]})
    report = gen.fit(_table(), noise=NoiseSource.seeded(5))
    assert [line.step for line in report.lines][:2] == [
        "DP quantile edges (1 column)",
        "1-way marginals",
    ]
    rho = cdp_rho(epsilon=2.0, delta=1e-6)
    assert report.lines[0].rho == pytest.approx(0.05 * rho, rel=1e-9)
    assert report.rho == pytest.approx(rho, rel=1e-9) and report.epsilon <= 2.0
    edges = gen.resolved_columns["income"].edges
    assert edges and list(edges) == sorted(set(edges))
    # income ~ age * 1500 (+noise), age >= 18: under 3% of rows lie below 25k, so the
    # first uniform edge of [0, 200k] (25k) would be nearly empty; the DP edges are not
    assert min(edges) > 25_000 and gen.columns["income"].edges is None
    gen.save(tmp_path / "m")
    again = load_generator(tmp_path / "m")
    assert again.resolved_columns["income"].edges == edges
    out = again.sample(400, rng=np.random.default_rng(0))
    assert out["income"].between(0, 200_000).all()
    with pytest.raises(GeneratorError, match="quantile_edges: column 'colour'"):
        MSTGenerator(COLUMNS, epsilon=1.0, delta=1e-6, params={"quantile_edges": ["colour"]})


def test_max_model_size_keeps_big_pairs_out_of_the_tree() -> None:
    """Memory bound: pairs above max_model_size are never selected; when no spanning
    tree fits, a clear error names the widest column (its public, DP-compressed size)."""
    rng = np.random.default_rng(0)
    n = 6000
    cats = [f"c{i:03d}" for i in range(300)]
    frame = pd.DataFrame(
        {
            "wide": rng.choice(cats, n),
            "other": rng.choice(cats, n),
            "flag": rng.random(n) < 0.5,
            "tone": rng.choice(["warm", "cool", "neutral"], n),
        }
    )
    columns = {
        "wide": TypeAdapter(Column).validate_python({"type": "categorical", "categories": cats}),
        "other": TypeAdapter(Column).validate_python({"type": "categorical", "categories": cats}),
        "flag": COLUMNS["member"],
        "tone": COLUMNS["tone"],
    }
    # 300 x 300 = 90,000 cells (0.69 MB) is over a 0.5 MB cap; 300 x 3 is not
    gen = MSTGenerator(columns, epsilon=50.0, delta=1e-6, params={"max_model_size": 0.5})
    gen.fit(SensitiveTable(frame, label="t"), noise=NoiseSource.seeded(0))
    assert {0, 1} not in [set(e) for e in gen.model.edges]
    assert len(gen.model.edges) == 3
    tiny = MSTGenerator(columns, epsilon=50.0, delta=1e-6, params={"max_model_size": 0.001})
    with pytest.raises(
        GeneratorError,
        match=r"no spanning tree fits max_model_size: column "
        r"'(wide|other)' has \d+ cells",
    ):
        tiny.fit(SensitiveTable(frame, label="t"), noise=NoiseSource.seeded(0))
