"""A dataset's history in the store: withdrawals and expiries, kept forever.

``<root>/<dataset>/history.json`` lists events ``{"event", "version", "at", "reason",
"purged"}``. A *withdrawn* version is no longer served as latest and is refused by
``pull``/``load`` unless asked for explicitly with ``allow_withdrawn``; ``purge`` also
deletes its files. An *expired* version was deleted by the retention policy
(``store.retention.keep_last``). Published versions are never modified: only this log,
the ``LATEST`` pointer and the catalog change. The log is replaced in one put; two
custodians withdrawing at the same instant could lose one event (documented limit).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from synthrelease.errors import StoreError
from synthrelease.store.files import HISTORY, LATEST, MANIFEST, StoreFiles, parse_ref

log = logging.getLogger(__name__)
MAX_REASON = 500


def _append(store: StoreFiles, dataset: str, event: dict[str, Any]) -> None:
    events = store.history(dataset) + [event]
    with store.io("write to"):
        store.write_atomic(
            store._p(dataset, HISTORY), json.dumps({"events": events}, indent=2).encode()
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _delete_version(store: StoreFiles, dataset: str, version: str) -> None:
    """The manifest first (the version disappears at once), then the files."""
    base = store._p(dataset, version)
    with store.io("delete from"):
        if store.fs.exists(f"{base}/{MANIFEST}"):
            store.fs.rm_file(f"{base}/{MANIFEST}")
        if store.fs.exists(base):
            store.fs.rm(base, recursive=True)


def _repoint_latest(store: StoreFiles, dataset: str) -> str | None:
    latest = store.latest(dataset)
    pointer = store._p(dataset, LATEST)
    with store.io("write to"):
        if latest is None:
            if store.fs.exists(pointer):
                store.fs.rm_file(pointer)
        else:
            store.write_atomic(pointer, latest.encode())
    return latest


def withdraw(
    store: StoreFiles, dataset: str, version: str, *, reason: str, purge: bool = False
) -> dict[str, Any]:
    """Withdraw ``dataset@version`` (an explicit version). Returns the logged event."""
    parse_ref(f"{dataset}@{version}")
    if version == "latest":
        raise StoreError("withdraw needs an explicit version (NAME@VERSION), not 'latest'")
    reason = " ".join(str(reason or "").split())
    if not reason or len(reason) > MAX_REASON:
        raise StoreError(f"give a reason for the withdrawal (1-{MAX_REASON} characters)")
    if version not in store.versions(dataset):
        raise StoreError(f"no release {dataset}@{version} in {store.uri}")
    if version in store.withdrawn(dataset):
        raise StoreError(f"{dataset}@{version} is withdrawn already")
    event = {
        "event": "withdrawn",
        "version": version,
        "at": _now(),
        "reason": reason,
        "purged": bool(purge),
    }
    _append(store, dataset, event)
    latest = _repoint_latest(store, dataset)
    if purge:
        _delete_version(store, dataset, version)
    log.info("release withdrawn", extra={"release": f"{dataset}@{version}", "latest": latest})
    return event


def apply_retention(store: StoreFiles, dataset: str, keep_last: int) -> list[str]:
    """Delete all but the newest ``keep_last`` versions (never the latest). Returns them."""
    if keep_last < 1:
        raise StoreError("retention keep_last must be at least 1")
    versions = store.versions(dataset)
    latest = store.latest(dataset)
    expired = [v for v in versions[: max(len(versions) - keep_last, 0)] if v != latest]
    for version in expired:
        _append(
            store,
            dataset,
            {
                "event": "expired",
                "version": version,
                "at": _now(),
                "reason": f"retention: keep the newest {keep_last} versions",
                "purged": True,
            },
        )
        _delete_version(store, dataset, version)
    if expired:
        log.info(
            "retention deleted old versions", extra={"dataset": dataset, "count": len(expired)}
        )
    return expired
