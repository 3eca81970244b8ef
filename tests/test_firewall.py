"""The leak firewall: only synthetic tables, models trained on them, the opted-in DP
generator and metadata get into a release; real rows and real-data models never do."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthrelease.errors import FirewallError, PrivacyError
from synthrelease.firewall import Artifact, Provenance, RowScanPass, inspect_artifacts
from synthrelease.models.release import train_release_models
from synthrelease.models.train import train_on_table
from synthrelease.private.rowscan import scan_tables
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import parse_spec
from synthrelease.store import sha256_file
from tests.conftest import SMALL_COLUMNS, make_table

COLUMNS = parse_spec(
    {
        "name": "small",
        "source": {"kind": "csv", "path": "unused.csv"},
        "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
        "privacy": {"epsilon": 1, "delta": 1e-6, "budget": {"epsilon": 2, "delta": 1e-5}},
        "generator": {"name": "mst"},
        "synthetic_rows": 2000,
        "models": [
            {
                "name": "smoker",
                "kind": "classifier",
                "target": "smoker",
                "algorithm": "logistic_regression",
            }
        ],
    }
)
REAL = make_table(3000, seed=0)
TRAIN, HOLDOUT = REAL.iloc[:2100].reset_index(drop=True), REAL.iloc[2100:].reset_index(drop=True)


def _parquet(tmp: Path, frame: pd.DataFrame, name: str = "synthetic.parquet") -> Path:
    path = tmp / name
    frame.to_parquet(path, index=False)
    return path


def _scan(tables, columns=None):
    return scan_tables(
        tables,
        train=SensitiveTable(TRAIN, label="train"),
        holdout=SensitiveTable(HOLDOUT, label="holdout"),
        columns=columns or COLUMNS.columns,
    )


# ---------------------------------------------------------------------------- row scan
def test_a_fresh_sample_passes_the_row_scan(tmp_path):
    path = _parquet(tmp_path, make_table(2000, seed=42))
    assert _scan({"synthetic/t.parquet": path}).tables == {sha256_file(path)}


@pytest.mark.parametrize("source", ["train", "holdout"])
def test_one_copied_real_row_is_refused(tmp_path, source):
    real = TRAIN if source == "train" else HOLDOUT
    row = real[real["score"].notna() & (real["score"].abs() < 5)].iloc[[7]]
    leaky = pd.concat([make_table(2000, seed=42), row], ignore_index=True)
    with pytest.raises(
        FirewallError,
        match=r"'synthetic/t.parquet' holds rows identical to "
        r"sensitive rows \(a distinctive real row\)",
    ) as err:
        _scan({"synthetic/t.parquet": _parquet(tmp_path, leaky)})
    assert str(round(float(row["score"].iloc[0]), 3)) not in str(err.value)  # no value in errors


def test_the_real_table_itself_is_refused(tmp_path):
    with pytest.raises(FirewallError, match="identical to sensitive rows"):
        _scan({"synthetic/t.parquet": _parquet(tmp_path, TRAIN)})


def test_chance_collisions_pass_but_copies_beyond_chance_fail(tmp_path):
    discrete = {k: v for k, v in COLUMNS.columns.items() if k != "score"}  # 2,160 combinations
    fresh = make_table(2000, seed=42).drop(columns="score")
    assert _scan({"t.parquet": _parquet(tmp_path, fresh)}, discrete)
    with pytest.raises(FirewallError, match="more copies than chance"):
        _scan(
            {"t.parquet": _parquet(tmp_path, TRAIN.drop(columns="score"), "copy.parquet")}, discrete
        )


# ---------------------------------------------------------------------------- types
def _table(tmp_path):
    path = _parquet(tmp_path, make_table(200, seed=5))
    return path, RowScanPass(frozenset({sha256_file(path)}))


def test_files_without_provenance_or_row_scan_are_refused(tmp_path):
    table, scan = _table(tmp_path)
    with pytest.raises(FirewallError, match="carries no provenance"):
        inspect_artifacts({"synthetic/t.parquet": table}, row_scan=scan)
    with pytest.raises(FirewallError, match="no passing row scan"):
        inspect_artifacts(
            {"synthetic/t.parquet": Artifact(table, Provenance.SYNTHETIC)}, row_scan=None
        )
    other = _parquet(tmp_path, make_table(200, seed=6), "other.parquet")
    with pytest.raises(FirewallError, match="no passing row scan"):  # a scan of other bytes
        inspect_artifacts(
            {"synthetic/t.parquet": Artifact(other, Provenance.SYNTHETIC)}, row_scan=scan
        )


@pytest.mark.parametrize(
    "rel, content, provenance, message",
    [
        ("model.pkl", pickle.dumps({"a": 1}), Provenance.METADATA, "pickles"),
        ("notes.json", pickle.dumps({"a": 1}), Provenance.METADATA, "content is a pickle"),
        ("gen/weights.pt", b"zip", Provenance.TRAINED_ON_SYNTHETIC, "pickles"),
        ("synthetic/t.csv", b"a,b\n1,2\n", Provenance.SYNTHETIC, "file type '.csv' is not allowed"),
        ("data.exe", b"MZ", Provenance.METADATA, "file type '.exe'"),
        ("notes.json", b"{not json", Provenance.METADATA, "not valid JSON"),
        ("notes.md", b"\xff\xfe\x00", Provenance.METADATA, "not UTF-8"),
        ("models/m/model.onnx", b"garbage", Provenance.TRAINED_ON_SYNTHETIC, "not an ONNX model"),
        (
            "synthetic/t.parquet",
            b"PAR1 not really PAR1",
            Provenance.SYNTHETIC,
            "not a readable Parquet",
        ),
        ("../escape.json", b"{}", Provenance.METADATA, "refused file name"),
        ("/abs.json", b"{}", Provenance.METADATA, "refused file name"),
        (".hidden.json", b"{}", Provenance.METADATA, "refused file name"),
        ("manifest.json", b"{}", Provenance.METADATA, "the store writes it itself"),
        (
            "generator/generator.json",
            b"{}",
            Provenance.DP_GENERATOR,
            "private unless the spec opts in",
        ),
    ],
)
def test_forbidden_files_are_refused(tmp_path, rel, content, provenance, message):
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(FirewallError, match=message):
        inspect_artifacts({rel: Artifact(path, provenance)}, row_scan=None)


def test_dp_generator_only_on_opt_in_and_numeric_only(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    np.savez(good, a=np.arange(3.0))
    np.savez(bad, a=np.array([{"x": 1}], dtype=object))
    files = {"generator/arrays.npz": Artifact(good, Provenance.DP_GENERATOR)}
    with pytest.raises(FirewallError, match="opts in"):
        inspect_artifacts(files, row_scan=None)
    assert inspect_artifacts(files, row_scan=None, allow_generator=True).provenance == {
        "generator/arrays.npz": "dp-generator"
    }
    with pytest.raises(FirewallError, match="numeric-only"):
        inspect_artifacts(
            {"generator/arrays.npz": Artifact(bad, Provenance.DP_GENERATOR)},
            row_scan=None,
            allow_generator=True,
        )
    with pytest.raises(FirewallError, match="belong under generator/"):
        inspect_artifacts(
            {"arrays.npz": Artifact(good, Provenance.DP_GENERATOR)},
            row_scan=None,
            allow_generator=True,
        )


# ---------------------------------------------------------------------------- models
def _models(tmp_path, table: Path, out: str = "models") -> dict[str, Artifact]:
    return train_release_models(
        COLUMNS,
        table_rel="synthetic/small.parquet",
        table_path=table,
        out_dir=tmp_path / out,
        release_id="small@20261128T101500Z",
        privacy={"epsilon": 1.0, "delta": 1e-6},
    )


def test_a_model_trained_on_the_synthetic_table_is_cleared(tmp_path):
    table, scan = _table(tmp_path)
    files = {
        "synthetic/small.parquet": Artifact(table, Provenance.SYNTHETIC),
        **_models(tmp_path, table),
    }
    clearance = inspect_artifacts(files, row_scan=scan)
    assert clearance.models == ("models/smoker/model.onnx",)
    assert clearance.provenance["models/smoker/card.json"] == "metadata"


def test_a_model_trained_on_the_real_table_cannot_get_in(tmp_path):
    table, scan = _table(tmp_path)
    real = _parquet(tmp_path, TRAIN, "real-train.parquet")
    synthetic_files = _models(tmp_path, table)
    real_files = _models(tmp_path, real, out="real-models")
    # 1. honest card: it names the real table, which is not a synthetic table of the release
    files = {"synthetic/small.parquet": Artifact(table, Provenance.SYNTHETIC), **real_files}
    with pytest.raises(FirewallError, match="does not name a synthetic table of this release"):
        inspect_artifacts(files, row_scan=scan)
    # 2. forged card: the real-data ONNX file under the synthetic model's card
    files = {
        "synthetic/small.parquet": Artifact(table, Provenance.SYNTHETIC),
        **synthetic_files,
        "models/smoker/model.onnx": real_files["models/smoker/model.onnx"],
    }
    with pytest.raises(FirewallError, match="not reproducible from the synthetic table"):
        inspect_artifacts(files, row_scan=scan)
    # 3. a model without a card
    files = {
        "synthetic/small.parquet": Artifact(table, Provenance.SYNTHETIC),
        "models/smoker/model.onnx": synthetic_files["models/smoker/model.onnx"],
    }
    with pytest.raises(FirewallError, match="no model card"):
        inspect_artifacts(files, row_scan=scan)
    # 4. the trainer accepts a synthetic table file only, never sensitive rows
    with pytest.raises(PrivacyError):
        train_on_table(SensitiveTable(TRAIN, label="x"), COLUMNS.models[0], (), None)  # type: ignore[arg-type]
    card = json.loads((tmp_path / "real-models" / "smoker" / "card.json").read_text())
    assert card["training_data"]["sha256"] == sha256_file(real)
