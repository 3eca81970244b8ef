"""The same store behaviour on both backends: a local folder and S3 (moto server).

Versions are immutable, ``latest`` moves in one put, withdrawals are logged and no longer
served, retention deletes old versions (logged), the catalog follows, consumers get the
table and the model hash-verified, and tampered files are refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import synthrelease
from synthrelease.cli import main
from synthrelease.errors import IntegrityError, ReleaseNotFoundError, StoreError, WithdrawnError
from synthrelease.firewall import Artifact, Provenance, RowScanPass
from synthrelease.models.release import model_entries, train_release_models
from synthrelease.spec import parse_spec
from synthrelease.store import ReleaseStore, sha256_file
from tests.s3server import s3  # noqa: F401 - module-scoped moto server fixture
from tests.store_helpers import T0, manifest, publish


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return ReleaseStore(str(tmp_path / "store"))
    server = request.getfixturevalue("s3")
    return ReleaseStore(server.uri())


def _write(store: ReleaseStore, rel: str, data: bytes) -> None:
    path = store._p(*rel.split("/"))
    store.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    store.fs.pipe_file(path, data)


def test_withdraw_moves_latest_and_is_logged(store, tmp_path):
    v1 = publish(store, tmp_path)
    v2 = publish(store, tmp_path, eps=2.0)
    assert store.resolve("demo") == v2
    event = store.withdraw("demo", v2, reason="wrong  bounds\ndeclared")
    assert event["reason"] == "wrong bounds declared"
    assert store.resolve("demo") == v1
    assert store.fs.cat_file(store._p("demo", "LATEST")).decode() == v1
    assert [(i.version, i.latest, i.withdrawn) for i in store.releases()] == [
        (v1, True, False),
        (v2, False, True),
    ]
    with pytest.raises(WithdrawnError, match="withdrawn"):
        synthrelease.load("demo", version=v2, store=store.uri)
    assert synthrelease.load("demo", version=v2, store=store.uri, allow_withdrawn=True).shape == (
        3,
        1,
    )
    assert store.verify("demo", v2)  # still intact, still verifiable
    with pytest.raises(StoreError, match="withdrawn already"):
        store.withdraw("demo", v2, reason="again")
    with pytest.raises(StoreError, match="reason"):
        store.withdraw("demo", v1, reason="  ")
    store.withdraw("demo", v1, reason="superseded", purge=True)
    assert store.versions("demo") == [v2]
    with pytest.raises(ReleaseNotFoundError):
        store.resolve("demo")
    assert [e["event"] for e in store.history("demo")] == ["withdrawn", "withdrawn"]
    catalog = store.fs.cat_file(store._p("index.html")).decode()
    assert "withdrawn" in catalog and "superseded" in catalog


def test_retention_keeps_the_newest_versions(store, tmp_path):
    versions = [publish(store, tmp_path, eps=float(i + 1), keep_last=2) for i in range(4)]
    assert store.versions("demo") == versions[-2:]
    assert [e["version"] for e in store.history("demo") if e["event"] == "expired"] == versions[:2]
    assert store.resolve("demo") == versions[-1]


def test_a_version_without_manifest_is_invisible(store, tmp_path):
    v1 = publish(store, tmp_path)
    _write(store, "demo/20991231T000000Z/synthetic/demo.parquet", b"half written")
    assert store.versions("demo") == [v1]
    _write(store, "demo/LATEST", b"20991231T000000Z")  # a pointer to nothing is ignored
    assert store.resolve("demo") == v1


def test_tampered_file_is_refused(store, tmp_path):
    v1 = publish(store, tmp_path)
    buf = pd.DataFrame({"x": [7, 7, 7]}).to_parquet()
    _write(store, f"demo/{v1}/synthetic/demo.parquet", buf)
    with pytest.raises(IntegrityError, match="manifest hash"):
        store.verify("demo")
    with pytest.raises(IntegrityError):
        store.pull("demo", v1, tmp_path / "out")
    with pytest.raises(IntegrityError):
        synthrelease.load("demo", store=store.uri)


def _model_release(store: ReleaseStore, tmp_path) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.choice(["u", "v"], n)})
    frame["y"] = (frame["a"] + (frame["b"] == "u") + rng.normal(0, 0.3, n)) > 0.5
    table = tmp_path / "syn.parquet"
    frame.to_parquet(table, index=False)
    spec = parse_spec(
        {
            "name": "demo",
            "source": {"kind": "csv", "path": "unused.csv"},
            "schema": {
                "columns": {
                    "a": {"type": "numerical", "lower": -9, "upper": 9},
                    "b": {"type": "categorical", "categories": ["u", "v"]},
                    "y": {"type": "boolean"},
                }
            },
            "privacy": {"epsilon": 1, "delta": 1e-6, "budget": {"epsilon": 2, "delta": 1e-5}},
            "generator": {"name": "mst"},
            "synthetic_rows": n,
            "models": [
                {
                    "name": "y-clf",
                    "kind": "classifier",
                    "target": "y",
                    "algorithm": "logistic_regression",
                }
            ],
        }
    )
    version = store.next_version("demo", T0)
    files = {"synthetic/demo.parquet": Artifact(table, Provenance.SYNTHETIC)}
    files.update(
        train_release_models(
            spec,
            table_rel="synthetic/demo.parquet",
            table_path=table,
            out_dir=tmp_path / "models",
            release_id=f"demo@{version}",
            privacy={"epsilon": 1.0, "delta": 1e-6},
        )
    )
    m = {**manifest(), "models": model_entries(spec)}
    store.publish(
        "demo",
        files=files,
        manifest=m,
        created=T0,
        version=version,
        row_scan=RowScanPass(frozenset({sha256_file(table)})),
    )
    return version, frame


def test_consumer_loads_table_and_model(store, tmp_path, capsys):
    version, frame = _model_release(store, tmp_path)
    df = synthrelease.load("demo", store=store.uri)
    pd.testing.assert_frame_equal(df, frame)
    model = synthrelease.load_model("demo", model="y-clf", store=store.uri)
    assert model.card["training_data"]["release"] == f"demo@{version}"
    assert model.classes == ("false", "true")
    accuracy = (model.predict(frame) == np.where(frame["y"], "true", "false")).mean()
    assert accuracy > 0.8
    assert model.predict_proba(frame.head(5)).shape == (5, 2)
    assert synthrelease.load_model("demo", store=store.uri).name == "y-clf"  # the only one
    with pytest.raises(ReleaseNotFoundError, match="no model 'nope'"):
        synthrelease.load_model("demo", model="nope", store=store.uri)
    # the CLI against the same backend
    assert main(["pull", "demo@latest", "-o", str(tmp_path / "pulled"), "--store", store.uri]) == 0
    pulled = tmp_path / "pulled" / "demo" / version
    assert (pulled / "models" / "y-clf" / "model.onnx").exists()
    assert (
        json.loads((pulled / "models" / "y-clf" / "card.json").read_text())["kind"] == "classifier"
    )
    assert main(["releases", "verify", "demo", "--store", store.uri]) == 0
    assert main(["releases", "list", "--store", store.uri]) == 0
    out = capsys.readouterr().out
    assert f"demo@{version} (latest)" in out and "files match" in out
    # tamper with the model: refused
    _write(store, f"demo/{version}/models/y-clf/model.onnx", b"\x08\x07not the model")
    with pytest.raises(IntegrityError):
        synthrelease.load_model("demo", model="y-clf", store=store.uri)
    assert main(["releases", "verify", "demo", "--store", store.uri]) == 2
    assert "does not match its manifest hash" in capsys.readouterr().err


def test_cli_show_withdraw_history(store, tmp_path, capsys):
    sheet = tmp_path / "datasheet.md"
    sheet.write_text("# Datasheet\nMotivation: testing.\n")
    v1 = publish(store, tmp_path, extra={"datasheet.md": Artifact(sheet, Provenance.METADATA)})
    v2 = publish(store, tmp_path, eps=2.0)
    assert main(["releases", "show", f"demo@{v1}", "--store", store.uri]) == 0
    out = capsys.readouterr().out
    assert f'"release_id": "demo@{v1}"' in out and f"superseded by {v2}" in out
    assert "--- datasheet.md (sha256 verified) ---\n# Datasheet\nMotivation: testing." in out
    assert main(["releases", "show", f"demo@{v1}", "--json", "--store", store.uri]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == v1
    assert main(["releases", "withdraw", "demo", "--reason", "x", "--store", store.uri]) == 2
    assert "explicit version" in capsys.readouterr().err
    assert (
        main(["releases", "withdraw", f"demo@{v2}", "--reason", "bad rows", "--store", store.uri])
        == 0
    )
    assert f"latest is now {v1}" in capsys.readouterr().out
    assert main(["releases", "history", "demo", "--store", store.uri]) == 0
    assert "withdrawn" in capsys.readouterr().out
    assert main(["pull", f"demo@{v2}", "-o", str(tmp_path / "o"), "--store", store.uri]) == 2
    assert "withdrawn" in capsys.readouterr().err
    assert (
        main(
            [
                "pull",
                f"demo@{v2}",
                "-o",
                str(tmp_path / "o"),
                "--allow-withdrawn",
                "--store",
                store.uri,
            ]
        )
        == 0
    )
