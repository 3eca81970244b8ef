"""Publishing a release into a store (:class:`~synthrelease.store.ReleaseStore`).

Order: the leak firewall clears every file (nothing is written before) -> the files are
uploaded (locally into a staging folder, on object storage in place) -> the manifest is
written last (locally the staging folder is then renamed into place) -> ``LATEST`` is
replaced in one put -> retention and the catalog follow (best effort: derived state).
Any failure before ``LATEST`` removes what was written, manifest first: nothing is left
half-visible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from synthrelease.errors import FirewallError, StoreError
from synthrelease.firewall import Artifact, Provenance, RowScanPass, inspect_artifacts, sha256_path
from synthrelease.store.files import LATEST, MANIFEST, StoreFiles, parse_ref, sha256_bytes

log = logging.getLogger(__name__)


def publish_release(
    store: StoreFiles,
    dataset: str,
    *,
    files: Mapping[str, Artifact],
    manifest: dict[str, Any],
    created: dt.datetime,
    readme: Callable[[dict[str, Any]], str] | None = None,
    row_scan: RowScanPass | None = None,
    allow_generator: bool = False,
    version: str | None = None,
) -> str:
    """Clear ``files`` through the firewall, upload them, write the manifest last.

    The manifest gets ``version``, ``release_id``, the sha256 and provenance of every
    file; ``readme(manifest)``, if given, becomes ``README.md``. Then ``LATEST`` moves.
    Returns the version (retention and the catalog follow in ``ReleaseStore.publish``).
    """
    parse_ref(dataset)
    clearance = inspect_artifacts(files, row_scan=row_scan, allow_generator=allow_generator)
    version = version or store.next_version(dataset, created)
    parse_ref(f"{dataset}@{version}")
    final = store._p(dataset, version)
    staging = store._p(dataset, f".staging-{uuid.uuid4().hex}") if store.local else final
    with store.io("publish to"):
        if store.fs.exists(final):
            raise StoreError(f"{dataset}@{version} exists already: releases are immutable")
        manifest = {**manifest, "version": version, "release_id": f"{dataset}@{version}"}
        hashes, provenance = dict(clearance.files), dict(clearance.provenance)
        text = readme({**manifest, "files": hashes}).encode() if readme else None
        if text is not None:
            hashes["README.md"] = sha256_bytes(text)
            provenance["README.md"] = Provenance.METADATA.value
        manifest["files"] = dict(sorted(hashes.items()))
        manifest["artifacts"] = {rel: {"provenance": provenance[rel]} for rel in sorted(hashes)}
        try:
            _upload(store, staging, files, clearance.files, text)
            store.fs.pipe_file(f"{staging}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
            if store.local:
                store.fs.mv(staging, final, recursive=True)
            store.write_atomic(store._p(dataset, LATEST), version.encode())
        except BaseException:
            _discard(store, staging, final)
            raise
    log.info("release published", extra={"release": f"{dataset}@{version}"})
    return version


def _upload(
    store: StoreFiles,
    target: str,
    files: Mapping[str, Artifact],
    cleared: Mapping[str, str],
    readme: bytes | None,
) -> None:
    store.makedirs(target)
    for rel, artifact in files.items():
        if sha256_path(artifact.path) != cleared[rel]:
            raise FirewallError(f"refused {rel!r}: it changed after the firewall cleared it")
        dest = f"{target}/{rel}"
        store.makedirs(dest.rsplit("/", 1)[0])
        store.fs.put_file(str(artifact.path), dest)
    if readme is not None:
        store.fs.pipe_file(f"{target}/README.md", readme)


def _discard(store: StoreFiles, staging: str, final: str) -> None:
    """Best effort after a failed publish: the manifest first, so nothing is half-visible."""
    for path in dict.fromkeys((staging, final)):  # final did not exist before: ours
        with contextlib.suppress(Exception):
            if store.fs.exists(f"{path}/{MANIFEST}"):
                store.fs.rm_file(f"{path}/{MANIFEST}")
        with contextlib.suppress(Exception):
            if store.fs.exists(path):
                store.fs.rm(path, recursive=True)
