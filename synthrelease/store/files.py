"""The release store's files: immutable, hashed releases behind an fsspec URI.

(Over 300 lines: one class, the layer every other module of the store shares: paths,
backend I/O with its error mapping, reads and hashes; its writers live beside it.)

Backends: a local folder (default) or S3-compatible object storage (``s3://bucket/prefix``
through s3fs; credentials and endpoint from the standard AWS environment variables,
never from the spec). Layout::

    <root>/index.html                    catalog of every release (regenerated)
    <root>/<dataset>/LATEST              the version served as latest (one small object)
    <root>/<dataset>/history.json        withdrawals and expiries (kept forever)
    <root>/<dataset>/<version>/          manifest.json, README.md, synthetic/, models/, ...

A version is visible only once its ``manifest.json`` exists, and the manifest is written
last: locally the files are staged under ``<dataset>/.staging-<id>/`` and renamed into
place; on object storage (no atomic rename) they are written in place and readers list
only versions whose manifest exists. ``LATEST`` is replaced in one put. Every file passes
the leak firewall (:mod:`synthrelease.firewall`) before anything is written
(:mod:`synthrelease.store.publisher`); consumers' reads are in
:mod:`synthrelease.store.consumer`, withdrawals and retention in
:mod:`synthrelease.store.history`, the catalog in :mod:`synthrelease.store.catalog`;
:class:`synthrelease.store.ReleaseStore` puts them together. This module is the layer
they share: paths, I/O, reads (the history log included) and hashes. It sees
synthetic data and public metadata only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from synthrelease.errors import IntegrityError, ReleaseNotFoundError, StoreError, WithdrawnError
from synthrelease.firewall import sha256_path
from synthrelease.spec import NAME_RE

log = logging.getLogger(__name__)
VERSION_RE = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MANIFEST = "manifest.json"
LATEST = "LATEST"
CATALOG = "index.html"
HISTORY = "history.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


sha256_file = sha256_path


def version_key(version: str) -> tuple[str, int]:
    base, _, n = version.partition("-")
    return base, int(n or 0)


def parse_ref(ref: str) -> tuple[str, str]:
    """``NAME`` or ``NAME@VERSION`` -> (name, version or 'latest'); refuses odd names."""
    name, _, version = ref.partition("@")
    version = version or "latest"
    if not NAME_RE.match(name) or ".." in name:
        raise StoreError(f"invalid release name {name!r}: letters, digits, '_', '-', '.' only")
    if version != "latest" and not VERSION_RE.match(version):
        raise StoreError(
            f"invalid release version {version!r}: expected e.g. 20261128T101500Z or 'latest'"
        )
    return name, version


@lru_cache(maxsize=1)
def _io_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    with contextlib.suppress(ImportError):
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    with contextlib.suppress(ImportError):
        from aiohttp import ClientError as AioClientError

        errors.append(AioClientError)
    return tuple(errors)


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
    withdrawn: bool = False
    models: tuple[str, ...] = ()


class StoreFiles:
    """Paths, I/O and reads of one store (see the module docstring)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        try:
            self.fs, self.root = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise StoreError(
                f"release store {uri!r} is not usable ({type(exc).__name__})"
            ) from None
        self.root = self.root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache()

    def _p(self, *parts: str) -> str:
        return "/".join((self.root,) + parts)

    @contextlib.contextmanager
    def io(self, what: str) -> Iterator[None]:
        """Turn the backend's I/O errors (OSError, botocore, aiohttp) into StoreError."""
        try:
            yield
        except _io_errors() as exc:
            raise StoreError(
                f"cannot {what} release store {self.uri!r} ({type(exc).__name__})"
            ) from None

    def makedirs(self, path: str) -> None:
        """Folders exist only locally; on object storage this is a no-op (s3fs would
        otherwise create a missing *bucket*, with whatever defaults the account has)."""
        if self.local:
            self.fs.makedirs(path, exist_ok=True)

    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace one small object in one step (a put on S3; write + rename locally)."""
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, path)

    # ------------------------------------------------------------------ publish
    def next_version(self, dataset: str, created: dt.datetime) -> str:
        parse_ref(dataset)
        base = created.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        version, n = base, 1
        retired = {e.get("version") for e in self.history(dataset)}  # never reuse a name
        with self.io("read"):
            while version in retired or self.fs.exists(self._p(dataset, version)):
                version, n = f"{base}-{n}", n + 1
        return version

    def _best_effort(self, what: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            log.warning("could not %s (%s); the release is published", what, type(exc).__name__)

    # ------------------------------------------------------------------ lifecycle
    def history(self, dataset: str) -> list[dict[str, Any]]:
        """The dataset's withdrawals and expiries (``history.json``), oldest first."""
        parse_ref(dataset)
        path = self._p(dataset, HISTORY)
        with self.io("read"):
            if not self.fs.exists(path):
                return []
            raw = self.fs.cat_file(path)
        try:
            events = json.loads(raw)["events"]
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"the history of {dataset!r} in {self.uri} is unreadable") from None
        return [e for e in events if isinstance(e, dict)]

    def withdrawn(self, dataset: str) -> dict[str, dict[str, Any]]:
        return {e["version"]: e for e in self.history(dataset) if e.get("event") == "withdrawn"}

    # ------------------------------------------------------------------ read
    def datasets(self) -> list[str]:
        with self.io("read"):
            if not self.fs.exists(self.root):
                return []
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)]
        return sorted(
            n
            for n in names
            if NAME_RE.match(n) and ".." not in n and n != CATALOG and self.versions(n)
        )

    def versions(self, dataset: str) -> list[str]:
        """Visible versions (those with a manifest), oldest first."""
        parse_ref(dataset)
        base = self._p(dataset)
        with self.io("read"):
            if not self.fs.isdir(base):
                return []
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(base, detail=False)]
            out = [
                n for n in names if VERSION_RE.match(n) and self.fs.exists(f"{base}/{n}/{MANIFEST}")
            ]
        return sorted(out, key=version_key)

    def latest(self, dataset: str) -> str | None:
        """The version served as latest: the pointer, unless it names a withdrawn or
        missing version; then the newest version not withdrawn."""
        withdrawn = self.withdrawn(dataset)
        with self.io("read"):
            pointer = self._p(dataset, LATEST)
            if self.fs.exists(pointer):
                named = self.fs.cat_file(pointer).decode(errors="replace").strip()
                if (
                    VERSION_RE.match(named)
                    and named not in withdrawn
                    and self.fs.exists(self._p(dataset, named, MANIFEST))
                ):
                    return named
        live = [v for v in self.versions(dataset) if v not in withdrawn]
        return live[-1] if live else None

    def resolve(
        self, dataset: str, version: str = "latest", *, allow_withdrawn: bool = True
    ) -> str:
        parse_ref(dataset)
        if version == "latest":
            latest = self.latest(dataset)
            if latest is None:
                raise ReleaseNotFoundError(f"no release of {dataset!r} in {self.uri}")
            return latest
        if version not in self.versions(dataset):
            gone = [e for e in self.history(dataset) if e.get("version") == version]
            why = f" (deleted: {gone[-1].get('event')} on {gone[-1].get('at')})" if gone else ""
            raise ReleaseNotFoundError(f"no release {dataset}@{version} in {self.uri}{why}")
        if not allow_withdrawn:
            event = self.withdrawn(dataset).get(version)
            if event is not None:
                raise WithdrawnError(
                    f"{dataset}@{version} was withdrawn on {event.get('at')} "
                    f"(reason: {event.get('reason')}); pass allow_withdrawn=True "
                    "(--allow-withdrawn) to use it anyway"
                )
        return version

    def manifest(self, dataset: str, version: str = "latest") -> dict[str, Any]:
        version = self.resolve(dataset, version)
        with self.io("read"):
            raw = self.fs.cat_file(self._p(dataset, version, MANIFEST))
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise IntegrityError(
                f"manifest of {dataset}@{version} is unreadable ({type(exc).__name__})"
            ) from None

    def releases(self) -> list[ReleaseInfo]:
        out = []
        for dataset in self.datasets():
            latest, withdrawn = self.latest(dataset), self.withdrawn(dataset)
            for version in self.versions(dataset):
                m = self.manifest(dataset, version)
                out.append(
                    ReleaseInfo(
                        dataset=dataset,
                        version=version,
                        created=m.get("created", ""),
                        epsilon=float(m["privacy"]["epsilon"]),
                        delta=float(m["privacy"]["delta"]),
                        generator=m["generator"]["name"],
                        rows=int(m.get("synthetic_rows", 0)),
                        latest=version == latest,
                        withdrawn=version in withdrawn,
                        models=tuple(x["name"] for x in m.get("models", [])),
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
        except FileNotFoundError:
            raise IntegrityError(f"{dataset}@{version}: {rel} is missing") from None
        except _io_errors() as exc:
            raise StoreError(
                f"cannot read release store {self.uri!r} ({type(exc).__name__})"
            ) from None
        if sha256_bytes(data) != expected:
            raise IntegrityError(
                f"{dataset}@{manifest['version']}: {rel} does not match its manifest hash "
                "(tampered or corrupted); refusing it"
            )
        return data

    def verify(self, dataset: str, version: str = "latest") -> dict[str, str]:
        manifest = self.manifest(dataset, version)
        artifacts = manifest.get("artifacts")
        for rel in manifest.get("files", {}):
            if artifacts is not None and rel not in artifacts:
                raise IntegrityError(f"{dataset}@{manifest['version']}: {rel} has no provenance")
            self.read_verified(dataset, manifest["version"], rel)
        return manifest["files"]
