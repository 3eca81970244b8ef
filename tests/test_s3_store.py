"""S3-specific faults, against a real S3 API (moto server on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest

from synthrelease.errors import SpecError, StoreError
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from tests.s3server import S3Server, clear_s3fs_cache, s3  # noqa: F401 - fixture
from tests.store_helpers import publish


def test_publish_writes_and_lists_through_s3(s3: S3Server, tmp_path):
    store = ReleaseStore(s3.uri("plain"))
    version = publish(store, tmp_path)
    keys = {p.split("/", 2)[2] for p in store.fs.find(f"{s3.bucket}/plain")}
    assert keys == {
        "demo/LATEST",
        f"demo/{version}/README.md",
        f"demo/{version}/manifest.json",
        f"demo/{version}/synthetic/demo.parquet",
        "index.html",
    }
    assert store.fs.cat_file(f"{s3.bucket}/plain/demo/LATEST").decode() == version


def test_failed_upload_leaves_no_visible_version(s3: S3Server, tmp_path, monkeypatch):
    store = ReleaseStore(s3.uri())
    first = publish(store, tmp_path)
    real_pipe = store.fs.pipe_file

    def refuse_manifest(path, data, **kw):
        if path.endswith("manifest.json"):
            raise PermissionError("AccessDenied")
        return real_pipe(path, data, **kw)

    monkeypatch.setattr(store.fs, "pipe_file", refuse_manifest)
    with pytest.raises(StoreError, match="cannot publish to release store"):
        publish(store, tmp_path, eps=2.0)
    monkeypatch.undo()
    assert store.versions("demo") == [first]
    assert store.resolve("demo") == first
    leftovers = [p for p in store.fs.find(store.root) if "-1/" in p]
    assert leftovers == []  # the partial upload was removed


def test_missing_bucket_is_a_clear_error(s3: S3Server, tmp_path):
    store = ReleaseStore("s3://no-such-bucket/releases")
    with pytest.raises(StoreError, match="release store 's3://no-such-bucket/releases'"):
        publish(store, tmp_path)


def test_unreachable_endpoint_is_a_clear_error(s3: S3Server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    clear_s3fs_cache()
    try:
        store = ReleaseStore("s3://releases/x")
        with pytest.raises(
            StoreError,
            match=r"cannot (read|publish to) release store 's3://releases/x' "
            r"\(EndpointConnectionError\)",
        ):
            publish(store, tmp_path)
        with pytest.raises(StoreError, match="EndpointConnectionError"):
            store.releases()
    finally:
        monkeypatch.undo()
        clear_s3fs_cache()
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint


@pytest.mark.parametrize("uri", ["s3://KEY:SECRET@bucket/x", "s3://bucket/x?secret=1"])
def test_credentials_in_the_spec_are_refused(spec_factory, uri):
    with pytest.raises(SpecError, match="store.uri: .*credentials come from the environment"):
        load_spec(spec_factory(store={"uri": uri}))
