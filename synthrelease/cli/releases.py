"""``synthrelease releases ...`` and ``synthrelease pull``: what consumers do with a store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from synthrelease.cli.output import _out
from synthrelease.errors import (
    StoreError,
)
from synthrelease.store import ReleaseStore, parse_ref
from synthrelease.store.catalog import write_catalog


def cmd_releases_list(args: argparse.Namespace) -> int:
    rows = ReleaseStore(args.store).releases()
    if args.json:
        _out(json.dumps([r.__dict__ for r in rows], indent=2, default=list))
        return 0
    if not rows:
        _out(f"no releases in {args.store}")
        return 0
    _out(
        f"{'release':<44}{'epsilon':>9}{'delta':>10}{'rows':>9}  {'generator':<9}  models  created"
    )
    for r in rows:
        mark = " (latest)" if r.latest else " (withdrawn)" if r.withdrawn else ""
        rid = f"{r.dataset}@{r.version}{mark}"
        _out(
            f"{rid:<44}{r.epsilon:>9g}{r.delta:>10.2g}{r.rows:>9}  {r.generator:<9}  "
            f"{len(r.models):>6}  {r.created}"
        )
    return 0


def _datasheets(store: ReleaseStore, name: str, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    rels = [
        r for r in manifest.get("files", {}) if r.rsplit("/", 1)[-1].lower().startswith("datasheet")
    ]
    rels = [r for r in rels if r.endswith(".md")] or rels  # the readable form, if there is one
    return [
        (r, store.read_verified(name, manifest["version"], r).decode("utf-8", "replace"))
        for r in sorted(rels)
    ]


def cmd_releases_show(args: argparse.Namespace) -> int:
    name, version = parse_ref(args.ref)
    store = ReleaseStore(args.store)
    manifest = store.manifest(name, version)
    _out(json.dumps(manifest, indent=2))
    if args.json:
        return 0
    withdrawn = store.withdrawn(name).get(manifest["version"])
    if withdrawn:
        _out(f"status: withdrawn on {withdrawn.get('at')}: {withdrawn.get('reason')}")
    else:
        latest = store.latest(name)
        _out(f"status: {'latest' if latest == manifest['version'] else f'superseded by {latest}'}")
    for rel, text in _datasheets(store, name, manifest):
        _out(f"\n--- {rel} (sha256 verified) ---")
        _out(text.rstrip())
    return 0


def cmd_releases_verify(args: argparse.Namespace) -> int:
    name, version = parse_ref(args.ref)
    store = ReleaseStore(args.store)
    files = store.verify(name, version)
    _out(f"{args.ref}: {len(files)} files match their manifest hashes")
    resolved = store.resolve(name, version)
    if resolved in store.withdrawn(name):
        sys.stderr.write(f"note: {name}@{resolved} is withdrawn\n")
    return 0


def cmd_releases_withdraw(args: argparse.Namespace) -> int:
    name, version = parse_ref(args.ref)
    if version == "latest":
        raise StoreError("withdraw needs an explicit version: NAME@VERSION")
    store = ReleaseStore(args.store)
    event = store.withdraw(name, version, reason=args.reason, purge=args.purge)
    latest = store.latest(name)
    _out(
        f"withdrew {name}@{version}"
        + (" and deleted its files" if event["purged"] else "")
        + f"; latest is now {latest or 'none'}"
    )
    return 0


def cmd_releases_history(args: argparse.Namespace) -> int:
    name, _ = parse_ref(args.name)
    events = ReleaseStore(args.store).history(name)
    if not events:
        _out(f"no withdrawals or expiries recorded for {name!r}")
    for e in events:
        _out(
            f"{e.get('at')}  {e.get('event'):<10} {name}@{e.get('version')}  {e.get('reason')}"
            + ("  (files deleted)" if e.get("purged") else "")
        )
    return 0


def cmd_releases_catalog(args: argparse.Namespace) -> int:
    _out(f"wrote {write_catalog(ReleaseStore(args.store))}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    name, version = parse_ref(args.ref)
    out = ReleaseStore(args.store).pull(
        name, version, Path(args.output), allow_withdrawn=args.allow_withdrawn
    )
    _out(f"pulled {name}@{out.name} into {out} (hashes verified)")
    return 0
