"""DP estimates of undeclared domains: bounds, category discovery, the spec opt-in, and
clear errors where a domain is undeclared without a budget share."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from synthrelease.errors import GeneratorError, SchemaMismatchError, SpecError
from synthrelease.generators import build_generator
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.dp_domain import (
    category_threshold,
    dp_bounds,
    dp_categories,
    dp_row_count,
    grid_edges,
    resolve_columns,
    undeclared,
)
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, GeneratorSpec, parse_spec
from tests.conftest import SMALL_COLUMNS

COLUMN = TypeAdapter(Column)


def _table(**cols) -> SensitiveTable:
    return SensitiveTable(pd.DataFrame(cols), label="t")


def test_row_count_is_noisy_but_close():
    table = _table(x=np.arange(5000))
    got = [dp_row_count(table, rho=0.5, noise=NoiseSource.seeded(s)) for s in range(20)]
    assert all(abs(g - 5000) < 6 for g in got) and len(set(got)) > 3  # sigma = 1
    assert all(float(g).is_integer() for g in got)  # published on the integer grid


def test_bounds_cover_the_bulk_and_suppress_a_lone_outlier():
    rng = np.random.default_rng(0)
    ages = rng.integers(17, 91, 5000).astype(float)
    ages[0] = 1e9  # one row alone must not move the bound
    lo, hi = dp_bounds(_table(age=ages), "age", rho=0.05, noise=NoiseSource.seeded(1), integer=True)
    assert 8 <= lo <= 17 and 90 <= hi <= 128
    assert float(lo).is_integer() and float(hi).is_integer()


def test_bounds_grid_is_public_and_handles_signs_and_zero():
    edges = grid_edges()
    assert np.all(np.diff(edges) > 0) and 0.0 in edges
    x = np.concatenate([np.zeros(3000), -np.linspace(0.5, 40, 3000)])
    lo, hi = dp_bounds(_table(v=x), "v", rho=0.05, noise=NoiseSource.seeded(2))
    assert -64 <= lo <= -40 and 0 < hi <= 2**-7


def test_too_few_rows_is_an_error_without_values():
    with pytest.raises(GeneratorError, match="'v': too few rows") as info:
        dp_bounds(_table(v=[123456.0] * 5), "v", rho=0.001, noise=NoiseSource.seeded(0))
    assert "123456" not in str(info.value)
    with pytest.raises(SchemaMismatchError, match="'v': has values that are not numbers") as info:
        dp_bounds(_table(v=["SECRET-7"] * 5), "v", rho=1.0, noise=NoiseSource.seeded(0))
    assert "SECRET" not in str(info.value)


def test_category_discovery_keeps_frequent_values_and_drops_rare_ones():
    values = ["a"] * 400 + ["b"] * 300 + ["c"] * 60 + ["Atlantis"] + [None] * 20
    for seed in range(10):
        kept = dp_categories(
            _table(c=values), "c", rho=0.02, delta=1e-7, noise=NoiseSource.seeded(seed)
        )
        assert set(kept) == {"a", "b", "c"}
    # the threshold makes a lone value survive with probability delta
    sigma = 5.0
    from statistics import NormalDist

    assert NormalDist(1.0, sigma).cdf(category_threshold(sigma=sigma, delta=1e-6)) == pytest.approx(
        1 - 1e-6
    )


def test_resolve_columns_replaces_only_undeclared_domains():
    columns = {
        "age": COLUMN.validate_python({"type": "numerical", "integer": True}),
        "city": COLUMN.validate_python({"type": "categorical", "nullable": True}),
        "colour": COLUMN.validate_python(SMALL_COLUMNS["colour"]),
        "open_up": COLUMN.validate_python({"type": "numerical", "lower": 0}),
    }
    assert [undeclared(c) for c in columns.values()] == [True, True, False, True]
    rng = np.random.default_rng(3)
    table = _table(
        age=rng.integers(18, 80, 3000),
        city=rng.choice(["x", "other", "y"], 3000),
        colour=rng.choice(["red", "blue"], 3000),
        open_up=rng.uniform(0, 50, 3000),
    )
    resolved, spent = resolve_columns(
        table, columns, rho_each=0.05, delta_each=1e-8, noise=NoiseSource.seeded(4)
    )
    assert resolved["colour"] is columns["colour"]
    assert [s[0] for s in spent] == ["bounds of age", "categories of city", "bounds of open_up"]
    assert [s[2] for s in spent] == [0.0, 1e-8, 0.0]
    assert resolved["city"].categories == ("other", "x", "y")
    assert resolved["city"].other == "other_"  # never collides with a discovered label
    assert resolved["open_up"].lower == 0 and 50 <= resolved["open_up"].upper <= 64
    Discretiser(resolved)  # fully declared now


# --------------------------------------------------------------------------- spec
def _raw(**privacy):
    columns = copy.deepcopy(SMALL_COLUMNS)
    columns["age"] = {"type": "numerical", "integer": True}  # bounds left to DP
    columns["city"] = {"type": "categorical", "nullable": True}  # categories left to DP
    return {
        "name": "small",
        "source": {"kind": "csv", "path": "x.csv"},
        "schema": {"columns": columns},
        "privacy": {
            "epsilon": 3.0,
            "delta": 1e-6,
            "budget": {"epsilon": 10, "delta": 1e-5},
            **privacy,
        },
        "generator": {"name": "dpsgd"},
        "synthetic_rows": 100,
    }


def test_undeclared_domain_needs_a_budget_share():
    with pytest.raises(
        SpecError,
        match="schema.columns.age, schema.columns.city: bounds/"
        "categories not declared.*privacy.domain_share",
    ):
        parse_spec(_raw())
    spec = parse_spec(_raw(domain_share=0.1))
    assert spec.privacy.domain_share == 0.1 and not spec.columns["age"].declared


def test_only_a_domain_estimating_generator_accepts_undeclared_domains():
    raw = _raw(domain_share=0.1)
    raw["generator"] = {"name": "mst"}
    with pytest.raises(SpecError, match="generator 'mst' needs declared"):
        parse_spec(raw)
    spec = parse_spec(_raw(domain_share=0.1))
    with pytest.raises(GeneratorError, match="'age': its bounds/categories are not declared"):
        build_generator(GeneratorSpec(name="mst"), spec.columns, epsilon=1.0, delta=1e-6)
    with pytest.raises(GeneratorError, match="no budget share"):
        build_generator(spec.generator, spec.columns, epsilon=1.0, delta=1e-6)
    gen = build_generator(spec.generator, spec.columns, epsilon=1.0, delta=1e-6, domain_share=0.1)
    assert gen.domain_share == 0.1


def test_declared_specs_are_unchanged():
    raw = _raw()
    raw["schema"]["columns"] = copy.deepcopy(SMALL_COLUMNS)
    spec = parse_spec(raw)
    assert all(c.declared for c in spec.columns.values() if hasattr(c, "declared"))
    assert spec.columns["city"].labels == ("a", "b", "c", "other")
    with pytest.raises(SpecError, match="declare at least one category"):
        raw["schema"]["columns"]["colour"] = {"type": "categorical", "categories": []}
        parse_spec(raw)


def test_dpsgd_fit_estimates_undeclared_domains_and_charges_them(tmp_path):
    import torch

    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from tests.conftest import make_table

    columns = {n: COLUMN.validate_python(c) for n, c in SMALL_COLUMNS.items()}
    columns["age"] = COLUMN.validate_python({"type": "numerical", "integer": True})
    columns["city"] = COLUMN.validate_python({"type": "categorical", "nullable": True})
    frame = make_table(2000)
    frame.loc[7, "city"] = "Atlantis"  # held by one row: must never be released
    params = {"epochs": 2, "batch_size": 256, "hidden": [16, 16], "bins": 8, "device": "cpu"}
    gen = DPSGDGenerator(columns, epsilon=3.0, delta=1e-6, params=params, domain_share=0.1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = gen.fit(SensitiveTable(frame, label="t"), noise=NoiseSource.seeded(0))
    finally:
        torch.set_num_threads(threads)
    steps = [line.step for line in report.lines]
    assert steps == ["row count", "bounds of age", "categories of city", "DP-SGD training"]
    cat = report.composition[2]
    assert cat.delta == pytest.approx(1e-7) and report.training[
        "delta_accountant"
    ] == pytest.approx(9e-7)
    assert report.epsilon <= 3.0 and report.delta == 1e-6
    assert gen.columns["city"].categories == ("a", "b", "c", "d")
    assert 8 <= gen.columns["age"].lower <= 18 and 89 <= gen.columns["age"].upper <= 128
    out = gen.sample(3000, rng=np.random.default_rng(0))
    assert "Atlantis" not in set(out["city"].dropna())
    gen.save(tmp_path / "m")
    loaded = DPSGDGenerator.load(tmp_path / "m")
    assert loaded.columns["city"].categories == ("a", "b", "c", "d")
