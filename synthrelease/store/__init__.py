"""The release store: immutable, hashed releases behind an fsspec URI.

:class:`ReleaseStore` is the one entry point (publish, read, withdraw, pull, load); it
puts together the modules of this package, which import only :mod:`.files` below them:

- :mod:`.files`: paths, I/O, reads, hashes, the history log (the layer the others share);
- :mod:`.publisher`: firewall, upload, manifest last, ``LATEST``;
- :mod:`.history`: withdrawals and retention;
- :mod:`.consumer`: pull and load, hash-verified;
- :mod:`.catalog`: the static ``index.html``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from synthrelease.models.runtime import ReleasedModel
from synthrelease.store import catalog, consumer, history, publisher
from synthrelease.store.files import (
    CATALOG,
    HISTORY,
    LATEST,
    MANIFEST,
    VERSION_RE,
    ReleaseInfo,
    StoreFiles,
    parse_ref,
    sha256_bytes,
    sha256_file,
    version_key,
)

log = logging.getLogger(__name__)

__all__ = [
    "CATALOG",
    "HISTORY",
    "LATEST",
    "MANIFEST",
    "VERSION_RE",
    "ReleaseInfo",
    "ReleaseStore",
    "StoreFiles",
    "parse_ref",
    "sha256_bytes",
    "sha256_file",
    "version_key",
]


class ReleaseStore(StoreFiles):
    """A release store at ``uri`` (a folder or ``s3://bucket/prefix``)."""

    def publish(self, dataset: str, *, keep_last: int | None = None, **kwargs: Any) -> str:
        """Firewall, upload, manifest last, ``LATEST`` (:func:`.publisher.publish_release`),
        then retention and the catalog (best effort: derived state). Returns the version."""
        version = publisher.publish_release(self, dataset, **kwargs)
        if keep_last is not None:
            self._best_effort(
                "apply retention", lambda: history.apply_retention(self, dataset, keep_last)
            )
        self.refresh_catalog()
        return version

    def refresh_catalog(self) -> None:
        """Regenerate ``<root>/index.html`` (best effort: it is derived from manifests)."""
        self._best_effort("regenerate the catalog", lambda: catalog.write_catalog(self))

    def withdraw(
        self, dataset: str, version: str, *, reason: str, purge: bool = False
    ) -> dict[str, Any]:
        event = history.withdraw(self, dataset, version, reason=reason, purge=purge)
        self.refresh_catalog()
        return event

    def apply_retention(self, dataset: str, keep_last: int) -> list[str]:
        return history.apply_retention(self, dataset, keep_last)

    def pull(
        self, dataset: str, version: str, dest: Path, *, allow_withdrawn: bool = False
    ) -> Path:
        return consumer.pull(self, dataset, version, dest, allow_withdrawn=allow_withdrawn)

    def load_table(
        self,
        dataset: str,
        version: str = "latest",
        *,
        allow_withdrawn: bool = False,
        table: str | None = None,
    ) -> pd.DataFrame:
        return consumer.load_table(
            self, dataset, version, allow_withdrawn=allow_withdrawn, table=table
        )

    def load_model(
        self,
        dataset: str,
        model: str | None = None,
        version: str = "latest",
        *,
        allow_withdrawn: bool = False,
    ) -> ReleasedModel:
        return consumer.load_model(self, dataset, model, version, allow_withdrawn=allow_withdrawn)
