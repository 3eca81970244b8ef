"""Publishing small, hand-made releases straight through the store (no pipeline)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from synthrelease.firewall import Artifact, Provenance, RowScanPass
from synthrelease.store import ReleaseStore, sha256_file

T0 = dt.datetime(2026, 11, 28, 10, 15, tzinfo=dt.UTC)
TABLE = "synthetic/demo.parquet"


def manifest(eps: float = 1.0) -> dict[str, Any]:
    return {
        "dataset": "demo",
        "privacy": {"epsilon": eps, "delta": 1e-6, "accountant": "test"},
        "generator": {"name": "mst"},
        "synthetic_rows": 3,
        "tables": [TABLE],
        "created": T0.isoformat(),
        "gate": {"passed": True, "checks": []},
    }


def table_file(tmp: Path, values=(1, 2, 3)) -> Path:
    path = Path(tmp) / f"table-{uuid.uuid4().hex[:8]}.parquet"
    pd.DataFrame({"x": list(values)}).to_parquet(path)
    return path


def publish(
    store: ReleaseStore,
    tmp: Path,
    *,
    eps: float = 1.0,
    values=(1, 2, 3),
    created: dt.datetime = T0,
    extra: dict[str, Any] | None = None,
    **kw: Any,
) -> str:
    """Publish a one-table release whose row scan 'passed' (the scan itself is tested in
    test_firewall.py against real rows)."""
    table = table_file(tmp, values)
    files = {TABLE: Artifact(table, Provenance.SYNTHETIC), **(extra or {})}
    return store.publish(
        "demo",
        files=files,
        manifest=manifest(eps),
        created=created,
        readme=lambda m: f"# {m['release_id']}\n",
        row_scan=RowScanPass(frozenset({sha256_file(table)})),
        **kw,
    )
