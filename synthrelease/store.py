"""The release store: immutable, hashed releases behind an fsspec URI.

Layout: ``<root>/<dataset>/<version>/`` holding ``manifest.json``, ``README.md`` and
``synthetic/<dataset>.parquet``; ``<root>/<dataset>/LATEST`` names the newest version.
A release is written under ``<dataset>/.staging-<id>/`` and moved into place only when
complete, the manifest last; readers list only versions whose manifest exists.
This module sees synthetic data and public metadata only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import fsspec
import pandas as pd

from synthrelease.errors import IntegrityError, ReleaseNotFoundError, StoreError
from synthrelease.spec import NAME_RE

VERSION_RE = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MANIFEST = "manifest.json"
LATEST = "LATEST"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_ref(ref: str) -> tuple[str, str]:
    """``NAME`` or ``NAME@VERSION`` -> (name, version or 'latest'); refuses odd names."""
    name, _, version = ref.partition("@")
    version = version or "latest"
    if not NAME_RE.match(name) or ".." in name:
        raise StoreError(f"invalid release name {name!r}: letters, digits, '_', '-', '.' only")
    if version != "latest" and not VERSION_RE.match(version):
        raise StoreError(f"invalid release version {version!r}: expected e.g. 20261128T101500Z or 'latest'")
    return name, version


@dataclass(frozen=True)
class ReleaseInfo:
    dataset: str
    version: str
    created: str
    epsilon: float
    delta: float
    generator: str
    rows: int
    latest: bool


class ReleaseStore:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        try:
            self.fs, self.root = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise StoreError(f"release store {uri!r} is not usable ({type(exc).__name__})") from None
        self.root = self.root.rstrip("/")

    def _p(self, *parts: str) -> str:
        return "/".join((self.root,) + parts)

    # ------------------------------------------------------------------ publish
    def _new_version(self, dataset: str, created: dt.datetime) -> str:
        base = created.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        version, n = base, 1
        while self.fs.exists(self._p(dataset, version)):
            version, n = f"{base}-{n}", n + 1
        return version

    def publish(
        self,
        dataset: str,
        *,
        files: Mapping[str, Path],
        manifest: dict[str, Any],
        created: dt.datetime,
        readme: Callable[[dict[str, Any]], str] | None = None,
    ) -> str:
        """Upload ``files`` (relative path -> local file) and the manifest atomically.

        The manifest gets ``version``, ``release_id`` and the sha256 of every file;
        ``readme(manifest)``, if given, becomes ``README.md``. Returns the version.
        """
        parse_ref(dataset)
        try:
            self.fs.makedirs(self._p(dataset), exist_ok=True)
            version = self._new_version(dataset, created)
            manifest = {**manifest, "version": version, "release_id": f"{dataset}@{version}"}
            hashes = {rel: sha256_file(local) for rel, local in files.items()}
            text = readme({**manifest, "files": hashes}).encode() if readme else None
            if text is not None:
                hashes["README.md"] = sha256_bytes(text)
            manifest["files"] = dict(sorted(hashes.items()))
            staging = self._p(dataset, f".staging-{uuid.uuid4().hex}")
            self.fs.makedirs(staging, exist_ok=True)
            for rel, local in files.items():
                target = f"{staging}/{rel}"
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(local), target)
            if text is not None:
                self.fs.pipe_file(f"{staging}/README.md", text)
            self.fs.pipe_file(f"{staging}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
            self.fs.mv(staging, self._p(dataset, version), recursive=True)
            self._write_latest(dataset, version)
        except (OSError, PermissionError) as exc:
            raise StoreError(
                f"cannot publish to release store {self.uri!r} ({type(exc).__name__})"
            ) from None
        return version

    def _write_latest(self, dataset: str, version: str) -> None:
        tmp = self._p(dataset, f".{LATEST}.{uuid.uuid4().hex}")
        self.fs.pipe_file(tmp, version.encode())
        self.fs.mv(tmp, self._p(dataset, LATEST))

    # ------------------------------------------------------------------ read
    def datasets(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)]
        return sorted(n for n in names if NAME_RE.match(n) and self.versions(n))

    def versions(self, dataset: str) -> list[str]:
        base = self._p(dataset)
        if not self.fs.isdir(base):
            return []
        out = []
        for p in self.fs.ls(base, detail=False):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            if VERSION_RE.match(name) and self.fs.exists(f"{base}/{name}/{MANIFEST}"):
                out.append(name)
        return sorted(out)

    def resolve(self, dataset: str, version: str = "latest") -> str:
        if version != "latest":
            if version not in self.versions(dataset):
                raise ReleaseNotFoundError(f"no release {dataset}@{version} in {self.uri}")
            return version
        pointer = self._p(dataset, LATEST)
        if self.fs.exists(pointer):
            named = self.fs.cat_file(pointer).decode().strip()
            if VERSION_RE.match(named) and self.fs.exists(self._p(dataset, named, MANIFEST)):
                return named
        versions = self.versions(dataset)
        if not versions:
            raise ReleaseNotFoundError(f"no release of {dataset!r} in {self.uri}")
        return versions[-1]

    def manifest(self, dataset: str, version: str = "latest") -> dict[str, Any]:
        version = self.resolve(dataset, version)
        try:
            return json.loads(self.fs.cat_file(self._p(dataset, version, MANIFEST)))
        except (OSError, ValueError) as exc:
            raise IntegrityError(
                f"manifest of {dataset}@{version} is unreadable ({type(exc).__name__})"
            ) from None

    def releases(self) -> list[ReleaseInfo]:
        out = []
        for dataset in self.datasets():
            latest = self.resolve(dataset)
            for version in self.versions(dataset):
                m = self.manifest(dataset, version)
                out.append(
                    ReleaseInfo(
                        dataset=dataset, version=version, created=m.get("created", ""),
                        epsilon=float(m["privacy"]["epsilon"]), delta=float(m["privacy"]["delta"]),
                        generator=m["generator"]["name"], rows=int(m.get("synthetic_rows", 0)),
                        latest=version == latest,
                    )
                )
        return out

    def read_verified(self, dataset: str, version: str, rel: str) -> bytes:
        """A file's bytes, refused unless its sha256 matches the manifest."""
        manifest = self.manifest(dataset, version)
        expected = manifest.get("files", {}).get(rel)
        if expected is None:
            raise IntegrityError(f"{rel} is not listed in the manifest of {dataset}@{version}")
        try:
            data = self.fs.cat_file(self._p(dataset, manifest["version"], rel))
        except OSError as exc:
            raise IntegrityError(f"{dataset}@{version}: {rel} is missing ({type(exc).__name__})") from None
        if sha256_bytes(data) != expected:
            raise IntegrityError(
                f"{dataset}@{manifest['version']}: {rel} does not match its manifest hash "
                "(tampered or corrupted); refusing it"
            )
        return data

    def verify(self, dataset: str, version: str = "latest") -> dict[str, str]:
        manifest = self.manifest(dataset, version)
        for rel in manifest.get("files", {}):
            self.read_verified(dataset, manifest["version"], rel)
        return manifest["files"]

    def pull(self, dataset: str, version: str, dest: Path) -> Path:
        """Copy a verified release into ``dest/<dataset>/<version>/``."""
        manifest = self.manifest(dataset, version)
        version = manifest["version"]
        out = Path(dest) / dataset / version
        blobs = {rel: self.read_verified(dataset, version, rel) for rel in manifest["files"]}
        for rel, data in blobs.items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return out

    def load_table(self, dataset: str, version: str = "latest") -> pd.DataFrame:
        manifest = self.manifest(dataset, version)
        rel = manifest["tables"][0]
        return pd.read_parquet(io.BytesIO(self.read_verified(dataset, manifest["version"], rel)))
