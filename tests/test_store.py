"""Release store on a local folder: atomic publish, listing, hashes, tampering, names."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import synthrelease
from synthrelease.errors import FirewallError, IntegrityError, ReleaseNotFoundError, StoreError
from synthrelease.firewall import Artifact, Provenance, RowScanPass
from synthrelease.store import ReleaseStore, parse_ref, sha256_file, version_key
from tests.store_helpers import T0, TABLE, manifest, publish, table_file


@pytest.fixture
def published(tmp_path):
    store = ReleaseStore(str(tmp_path / "store"))
    v1 = publish(store, tmp_path)
    v2 = publish(store, tmp_path, eps=2.0)
    return store, v1, v2


def test_publish_lists_resolves_and_hashes(published, tmp_path):
    store, v1, v2 = published
    assert v1 == "20261128T101500Z" and v2 == "20261128T101500Z-1"  # never overwritten
    assert store.versions("demo") == [v1, v2]
    assert store.resolve("demo") == v2
    m = store.manifest("demo", v1)
    assert m["release_id"] == f"demo@{v1}"
    assert set(m["files"]) == {TABLE, "README.md"}
    assert m["artifacts"] == {
        TABLE: {"provenance": "synthetic"},
        "README.md": {"provenance": "metadata"},
    }
    assert store.verify("demo", v1) == m["files"]
    infos = store.releases()
    assert [(i.version, i.latest, i.epsilon) for i in infos] == [(v1, False, 1.0), (v2, True, 2.0)]
    assert (tmp_path / "store" / "index.html").exists()  # the catalog follows every publish


def test_pull_and_load_verify_hashes(published, tmp_path):
    store, v1, _ = published
    out = store.pull("demo", v1, tmp_path / "out")
    assert (out / "synthetic" / "demo.parquet").exists()
    assert json.loads((out / "manifest.json").read_text())["version"] == v1
    df = synthrelease.load("demo", store=store.uri)
    assert df["x"].tolist() == [1, 2, 3]


def test_tampered_release_is_refused_everywhere(published, tmp_path):
    store, v1, v2 = published
    target = tmp_path / "store" / "demo" / v2 / "synthetic" / "demo.parquet"
    pd.DataFrame({"x": [9, 9, 9]}).to_parquet(target)
    with pytest.raises(IntegrityError, match="does not match its manifest hash"):
        store.verify("demo")
    with pytest.raises(IntegrityError):
        store.pull("demo", v2, tmp_path / "out")
    assert not (tmp_path / "out" / "demo" / v2).exists()  # all or nothing
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
    assert publish(store, tmp_path) == "20261128T101500Z-1"  # the half-written name is skipped


def test_publish_to_unwritable_store_fails_cleanly(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be")
    store = ReleaseStore(str(blocker / "store"))
    with pytest.raises(StoreError, match="cannot (publish to|read) release store"):
        publish(store, tmp_path)
    assert blocker.read_text().startswith("a file")


def test_failed_upload_leaves_nothing_visible(tmp_path, monkeypatch):
    store = ReleaseStore(str(tmp_path / "store"))
    publish(store, tmp_path)

    def broken(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(store, "write_atomic", broken)  # dies at the LATEST pointer
    with pytest.raises(StoreError, match="cannot publish"):
        publish(store, tmp_path, eps=5.0)
    assert store.versions("demo") == ["20261128T101500Z"]
    assert [p.name for p in (tmp_path / "store" / "demo").iterdir() if p.is_dir()] == [
        "20261128T101500Z"
    ]


def test_publish_refuses_files_the_firewall_refuses(tmp_path):
    store = ReleaseStore(str(tmp_path / "store"))
    table = table_file(tmp_path)
    scan = RowScanPass(frozenset({sha256_file(table)}))
    with pytest.raises(FirewallError, match="no provenance"):
        store.publish("demo", files={TABLE: table}, manifest=manifest(), created=T0, row_scan=scan)
    with pytest.raises(FirewallError, match="no passing row scan"):
        store.publish(
            "demo",
            files={TABLE: Artifact(table, Provenance.SYNTHETIC)},
            manifest=manifest(),
            created=T0,
        )
    assert not (tmp_path / "store").exists() or store.versions("demo") == []


def test_version_order_is_numeric():
    versions = ["20261128T101500Z-10", "20261128T101500Z-2", "20261128T101500Z", "20261127T000000Z"]
    assert sorted(versions, key=version_key) == [
        "20261127T000000Z",
        "20261128T101500Z",
        "20261128T101500Z-2",
        "20261128T101500Z-10",
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "../etc",
        "a/b",
        "demo@../../x",
        "demo@latest/x",
        "",
        "demo@2026",
        "a\\b",
        "demo x",
        "..",
        ".hidden",
        "demo@20261128T101500Z/../x",
    ],
)
def test_bad_release_refs_are_refused(ref):
    with pytest.raises(StoreError):
        parse_ref(ref)


def test_bad_names_are_refused_by_every_entry_point(tmp_path):
    store = ReleaseStore(str(tmp_path / "store"))
    with pytest.raises(StoreError, match="invalid release name"):
        publish_named(store, tmp_path, "../escape")
    with pytest.raises(StoreError):
        synthrelease.load("a/b", store=store.uri)
    with pytest.raises(StoreError):
        synthrelease.load_model("..", store=store.uri)
    assert not (tmp_path / "escape").exists()


def publish_named(store, tmp, name):
    table = table_file(tmp)
    return store.publish(
        name,
        files={TABLE: Artifact(table, Provenance.SYNTHETIC)},
        manifest=manifest(),
        created=T0,
        row_scan=RowScanPass(frozenset({sha256_file(table)})),
    )


def test_good_refs():
    assert parse_ref("adult") == ("adult", "latest")
    assert parse_ref("adult@20261128T101500Z-2") == ("adult", "20261128T101500Z-2")
