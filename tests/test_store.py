"""Release store: atomic publish, listing, hashes, tampering, and name checks."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import synthrelease
from synthrelease.errors import IntegrityError, ReleaseNotFoundError, StoreError
from synthrelease.store import ReleaseStore, parse_ref, sha256_file

T0 = dt.datetime(2026, 11, 28, 10, 15, tzinfo=dt.timezone.utc)


def _manifest(eps=1.0):
    return {"dataset": "demo", "privacy": {"epsilon": eps, "delta": 1e-6},
            "generator": {"name": "mst"}, "synthetic_rows": 3, "tables": ["synthetic/demo.parquet"],
            "created": T0.isoformat()}


@pytest.fixture
def published(tmp_path):
    table = tmp_path / "demo.parquet"
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(table)
    store = ReleaseStore(str(tmp_path / "store"))
    v1 = store.publish("demo", files={"synthetic/demo.parquet": table}, manifest=_manifest(),
                       created=T0, readme=lambda m: f"# {m['release_id']}\n")
    v2 = store.publish("demo", files={"synthetic/demo.parquet": table}, manifest=_manifest(2.0),
                       created=T0, readme=lambda m: f"# {m['release_id']}\n")
    return store, table, v1, v2


def test_publish_lists_resolves_and_hashes(published):
    store, table, v1, v2 = published
    assert v1 == "20261128T101500Z" and v2 == "20261128T101500Z-1"  # never overwritten
    assert store.versions("demo") == [v1, v2]
    assert store.resolve("demo") == v2
    m = store.manifest("demo", v1)
    assert m["release_id"] == f"demo@{v1}"
    assert m["files"]["synthetic/demo.parquet"] == sha256_file(table)
    assert set(m["files"]) == {"synthetic/demo.parquet", "README.md"}
    assert store.verify("demo", v1) == m["files"]
    infos = store.releases()
    assert [(i.version, i.latest, i.epsilon) for i in infos] == [(v1, False, 1.0), (v2, True, 2.0)]


def test_pull_and_load_verify_hashes(published, tmp_path):
    store, _, v1, _ = published
    out = store.pull("demo", v1, tmp_path / "out")
    assert (out / "synthetic" / "demo.parquet").exists()
    assert json.loads((out / "manifest.json").read_text())["version"] == v1
    df = synthrelease.load("demo", store=store.uri)
    assert df["x"].tolist() == [1, 2, 3]


def test_tampered_release_is_refused_everywhere(published, tmp_path):
    store, _, v1, v2 = published
    target = tmp_path / "store" / "demo" / v2 / "synthetic" / "demo.parquet"
    pd.DataFrame({"x": [9, 9, 9]}).to_parquet(target)
    with pytest.raises(IntegrityError, match="does not match its manifest hash"):
        store.verify("demo")
    with pytest.raises(IntegrityError):
        store.pull("demo", v2, tmp_path / "out")
    with pytest.raises(IntegrityError):
        synthrelease.load("demo", store=store.uri)
    assert synthrelease.load("demo", version=v1, store=store.uri)["x"].tolist() == [1, 2, 3]


def test_incomplete_staging_is_invisible(tmp_path):
    store = ReleaseStore(str(tmp_path / "store"))
    half = tmp_path / "store" / "demo" / ".staging-abc" / "synthetic"
    half.mkdir(parents=True)
    (half / "demo.parquet").write_bytes(b"partial")
    no_manifest = tmp_path / "store" / "demo" / "20261128T101500Z"
    no_manifest.mkdir()
    assert store.versions("demo") == []
    assert store.releases() == []
    with pytest.raises(ReleaseNotFoundError):
        store.resolve("demo")


def test_publish_to_unwritable_store_fails_cleanly(tmp_path):
    table = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(table)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be")
    store = ReleaseStore(str(blocker / "store"))
    with pytest.raises(StoreError, match="cannot publish"):
        store.publish("demo", files={"synthetic/demo.parquet": table}, manifest=_manifest(), created=T0)
    assert blocker.read_text().startswith("a file")


@pytest.mark.parametrize("ref", ["../etc", "a/b", "demo@../../x", "demo@latest/x", "", "demo@2026"])
def test_bad_release_refs_are_refused(ref):
    with pytest.raises(StoreError):
        parse_ref(ref)


def test_good_refs():
    assert parse_ref("adult") == ("adult", "latest")
    assert parse_ref("adult@20261128T101500Z-2") == ("adult", "20261128T101500Z-2")
