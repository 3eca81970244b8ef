"""Shared fixtures: a small seeded 'sensitive' table and a spec factory."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.pg import postgres_server

# The tests use seeded noise for reproducibility; a release run refuses a seeded spec
# unless this says the environment is a test (child processes inherit it).
os.environ["SYNTHRELEASE_TEST_NOISE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
ADULT_SPEC = ROOT / "configs" / "adult.yaml"

SMALL_COLUMNS: dict[str, Any] = {
    "age": {"type": "numerical", "lower": 0, "upper": 100, "integer": True},
    "score": {"type": "numerical", "lower": -5.0, "upper": 5.0, "nullable": True},
    "colour": {"type": "categorical", "categories": ["red", "green", "blue"]},
    "city": {
        "type": "categorical",
        "categories": ["a", "b", "c"],
        "other": "other",
        "nullable": True,
    },
    "smoker": {"type": "boolean"},
}


def make_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A seeded table with a planted dependency (colour -> smoker) and some nulls."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])
    smoker = np.where(colour == "red", rng.random(n) < 0.8, rng.random(n) < 0.1)
    score = rng.normal(0, 1.5, size=n).clip(-5, 5)
    score[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.25, 0.05]).astype(object)
    city[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, size=n),
            "score": score,
            "colour": colour,
            "city": city,
            "smoker": smoker,
        }
    )


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "small.csv"
    path.parent.mkdir()
    make_table().to_csv(path, index=False)
    return path


@pytest.fixture
def spec_factory(tmp_path: Path, small_csv: Path) -> Callable[..., Path]:
    """Write a spec for the small table; keyword overrides replace top-level keys."""

    def make(**overrides: Any) -> Path:
        raw: dict[str, Any] = {
            "name": "small",
            "source": {"kind": "csv", "path": str(small_csv)},
            "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
            "privacy": {
                "epsilon": 3.0,
                "delta": 1e-6,
                "budget": {"epsilon": 10.0, "delta": 1e-5},
                "noise": "seeded",
                "seed": 7,
            },
            "generator": {"name": "mst", "params": {"bins": 16}},
            "holdout": {"fraction": 0.3},
            "synthetic_rows": 2000,
            "gate": {"max_tvd_1way": 0.2, "max_tvd_2way": 0.3, "max_exact_copy_excess": 0.05},
            "workspace": {"path": str(tmp_path / "ws")},
            "store": {"uri": str(tmp_path / "store")},
        }
        raw.update(overrides)
        path = tmp_path / f"spec-{len(list(tmp_path.glob('spec-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return make


def adult_spec_for(tmp_path: Path, **overrides: Any) -> Path:
    """The demo spec, with workspace and store moved under ``tmp_path``."""
    raw = yaml.safe_load(ADULT_SPEC.read_text())
    raw["source"]["path"] = str(ROOT / "data" / "adult" / "adult_train.csv")
    raw["holdout"]["source"]["path"] = str(ROOT / "data" / "adult" / "adult_test.csv")
    raw["workspace"] = {"path": str(tmp_path / "ws")}
    raw["store"] = {"uri": str(tmp_path / "releases")}
    raw.update(overrides)
    path = tmp_path / "adult.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny matrices on a shared 2-core machine: one torch thread avoids OpenMP stalls.
    Modules that train nets use it: ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch  # only the modules that ask for it pay torch's import

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL server for the module's tests (required in CI)."""
    with postgres_server() as url:
        if url is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is required in CI (scripts/ensure-postgres.sh installs it)")
            pytest.skip("PostgreSQL binaries not installed")
        yield url
