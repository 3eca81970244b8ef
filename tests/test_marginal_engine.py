"""The numpy marginal engine: junction trees, exact inference, estimation, edges."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from synthrelease.errors import SpecError
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.estimation import Measurement, estimate
from synthrelease.generators.marginal.graphical import Calibrator
from synthrelease.generators.marginal.jtree import build, model_cells
from synthrelease.generators.marginal.jtree_sampler import GraphicalModel
from synthrelease.spec import Column, parse_spec

SIZES = [3, 4, 2, 5, 3, 2, 4]
LOOPY = [(0, 1), (1, 2, 3), (3, 4), (0, 4), (5,), (2, 6), (4, 6)]  # cycles: not a tree


def _joint(sizes, cliques, logs) -> np.ndarray:
    joint = np.zeros(sizes)
    for c, t in zip(cliques, logs):
        joint = joint + t.reshape([sizes[a] if a in c else 1 for a in range(len(sizes))])
    joint = np.exp(joint - joint.max())
    return joint / joint.sum()


def _marg(joint: np.ndarray, q) -> np.ndarray:
    return joint.sum(axis=tuple(i for i in range(joint.ndim) if i not in q))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True), min_size=1, max_size=8
    )
)
def test_junction_tree_has_the_running_intersection_property(cliques) -> None:
    cliques = [tuple(sorted(c)) for c in cliques]
    jt = build(SIZES, cliques)
    assert {a for c in jt.cliques for a in c} == set(range(len(SIZES)))
    assert all(any(set(c) <= set(j) for j in jt.cliques) for c in cliques)
    for a in range(len(SIZES)):  # cliques holding a are connected: one of them has no
        holders = [k for k, c in enumerate(jt.cliques) if a in c]  # holding parent
        tops = [k for k in holders if jt.parent[k] < 0 or a not in jt.cliques[jt.parent[k]]]
        assert len(tops) == 1
    assert model_cells(SIZES, cliques) == jt.total_cells


def test_exact_marginals_of_a_loopy_model_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    logs = [rng.normal(scale=1.5, size=[SIZES[a] for a in c]) for c in LOOPY]
    joint = _joint(SIZES, LOOPY, logs)
    beliefs = Calibrator(SIZES, LOOPY).beliefs(logs)
    for r in (1, 2, 3):  # in-clique and out-of-clique queries alike
        for q in itertools.combinations(range(len(SIZES)), r):
            np.testing.assert_allclose(beliefs.project(q), _marg(joint, q), atol=1e-12)


def test_calibration_survives_a_separator_slice_that_underflows() -> None:
    rng = np.random.default_rng(1)
    logs = [rng.normal(size=[SIZES[a] for a in c]) for c in LOOPY]
    logs[0][:, 2] -= 2000.0  # attribute 1 = 2 is (almost) impossible: a separator slice
    # of clique (0, 1, 4) (separator (1, 4)) underflows to zero under one scalar maximum
    joint = _joint(SIZES, LOOPY, logs)
    beliefs = Calibrator(SIZES, LOOPY).beliefs(logs)
    for q in [(0, 1), (1, 2, 3), (4, 6), (0, 6)]:
        got = beliefs.project(q)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, _marg(joint, q), atol=1e-12)


def test_estimation_recovers_a_model_from_exact_measurements() -> None:
    rng = np.random.default_rng(2)
    logs = [rng.normal(scale=1.0, size=[SIZES[a] for a in c]) for c in LOOPY]
    joint = _joint(SIZES, LOOPY, logs) * 1000.0
    meas = [Measurement(c, _marg(joint, c).ravel(), 1.0) for c in LOOPY]
    meas += [Measurement((a,), _marg(joint, (a,)), 1.0) for a in range(len(SIZES))]
    warm = estimate(SIZES, meas[:4], total=1000.0, iters=50)
    fit = estimate(SIZES, meas, total=1000.0, iters=1500, warm=warm)
    for q in itertools.combinations(range(len(SIZES)), 2):
        np.testing.assert_allclose(fit.project(q), _marg(joint, q), atol=0.2)


def test_sampler_follows_the_model_and_only_the_callers_rng() -> None:
    rng = np.random.default_rng(3)
    logs = [rng.normal(scale=1.5, size=[SIZES[a] for a in c]) for c in LOOPY]
    joint = _joint(SIZES, LOOPY, logs)
    beliefs = Calibrator(SIZES, LOOPY).beliefs(logs)
    maps = [np.arange(s) for s in SIZES]
    model = GraphicalModel.from_beliefs(beliefs, maps, LOOPY, 1000.0)
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    codes = model.sample_codes(40_000, np.random.default_rng(4))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(codes, model.sample_codes(40_000, np.random.default_rng(4)))
    for q in [(0, 4), (2, 6), (1, 3), (0, 5)]:
        flat = np.ravel_multi_index(codes[list(q)], [SIZES[a] for a in q])
        emp = np.bincount(flat, minlength=int(np.prod([SIZES[a] for a in q]))) / codes.shape[1]
        assert 0.5 * np.abs(emp - _marg(joint, q).ravel()).sum() < 0.02
    meta, arrays = model.to_state()
    again = GraphicalModel.from_state(meta, arrays)
    np.testing.assert_array_equal(codes, again.sample_codes(40_000, np.random.default_rng(4)))


def test_declared_edges_encode_and_decode_consistently() -> None:
    adapter = TypeAdapter(Column)
    cols = {
        "age": adapter.validate_python(
            {
                "type": "numerical",
                "lower": 16,
                "upper": 100,
                "integer": True,
                "edges": [25, 35, 45.5, 65],
            }
        ),
        "x": adapter.validate_python(
            {"type": "numerical", "lower": 0, "upper": 1, "edges": [0.1, 0.5], "nullable": True}
        ),
    }
    disc = Discretiser(cols)
    assert disc.sizes == {"age": 5, "x": 4}
    frame = pd.DataFrame({"age": [16, 24, 25, 45, 46, 100], "x": [0, 0.1, 0.99, 1, None, 0.5]})
    codes = disc.encode(frame)
    assert codes["age"].tolist() == [0, 0, 1, 2, 3, 4] and codes["x"].tolist() == [0, 1, 2, 2, 3, 2]
    decoded = disc.decode(pd.concat([codes] * 50, ignore_index=True), np.random.default_rng(0))
    pd.testing.assert_frame_equal(disc.encode(decoded), pd.concat([codes] * 50, ignore_index=True))


@pytest.mark.parametrize(
    "edges, problem",
    [
        ([30, 20], "strictly increasing"),
        ([0, 50], "strictly between"),
        ([50, 100], "strictly between"),
    ],
)
def test_bad_edges_are_refused_naming_the_key(edges, problem, tmp_path) -> None:
    raw = {
        "name": "t",
        "source": {"kind": "csv", "path": "x.csv"},
        "schema": {
            "columns": {"v": {"type": "numerical", "lower": 0, "upper": 100, "edges": edges}}
        },
        "privacy": {"epsilon": 1, "delta": 1e-6, "budget": {"epsilon": 2, "delta": 1e-5}},
        "generator": {"name": "aim"},
        "synthetic_rows": 10,
    }
    with pytest.raises(SpecError, match=problem):
        parse_spec(raw, base=tmp_path)


def test_mst_numpy_engine_agrees_with_mbi() -> None:
    """The same mirror descent from the same start: Private-PGM's JAX estimator is the
    reference for the numpy engine."""
    from synthrelease.generators import MSTGenerator
    from synthrelease.generators.noise import NoiseSource
    from tests.test_mst import COLUMNS, _table

    fits = {}
    for engine in ("numpy", "mbi"):
        gen = MSTGenerator(
            COLUMNS, epsilon=1.0, delta=1e-6, params={"engine": engine, "iters": 300}
        )
        gen.fit(_table(), noise=NoiseSource.seeded(7))
        fits[engine] = gen.model
    a, b = fits["numpy"], fits["mbi"]
    assert a.edges == b.edges
    for x, y in zip(a.edge_marginals, b.edge_marginals):
        assert np.abs(x - y).sum() / x.sum() < 2e-3
