"""What consumers do with a store: pull a release, load its table or a model.

Every byte is checked against the manifest's sha256 first (:meth:`ReleaseStore.read_verified`);
a withdrawn version is refused unless ``allow_withdrawn``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from synthrelease.errors import ReleaseNotFoundError
from synthrelease.models.runtime import ReleasedModel
from synthrelease.store.files import MANIFEST, StoreFiles


def pull(
    store: StoreFiles, dataset: str, version: str, dest: Path, *, allow_withdrawn: bool = False
) -> Path:
    """Copy a verified release into ``dest/<dataset>/<version>/`` (all or nothing)."""
    version = store.resolve(dataset, version, allow_withdrawn=allow_withdrawn)
    manifest = store.manifest(dataset, version)
    out = Path(dest) / dataset / version
    blobs = {rel: store.read_verified(dataset, version, rel) for rel in manifest["files"]}
    for rel, data in blobs.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out


def load_table(
    store: StoreFiles,
    dataset: str,
    version: str = "latest",
    *,
    allow_withdrawn: bool = False,
    table: str | None = None,
) -> pd.DataFrame:
    """The release's (first) synthetic table, hash-verified."""
    version = store.resolve(dataset, version, allow_withdrawn=allow_withdrawn)
    manifest = store.manifest(dataset, version)
    rel = table or manifest["tables"][0]
    if rel not in manifest["tables"]:
        raise ReleaseNotFoundError(f"{dataset}@{version} has no table {rel!r}")
    return pd.read_parquet(io.BytesIO(store.read_verified(dataset, version, rel)))


def load_model(
    store: StoreFiles,
    dataset: str,
    model: str | None = None,
    version: str = "latest",
    *,
    allow_withdrawn: bool = False,
) -> ReleasedModel:
    """A published model (hash-verified) as a :class:`ReleasedModel` (onnxruntime)."""
    version = store.resolve(dataset, version, allow_withdrawn=allow_withdrawn)
    manifest = store.manifest(dataset, version)
    models = {m["name"]: m for m in manifest.get("models", [])}
    if model is None and len(models) == 1:
        model = next(iter(models))
    if model not in models:
        raise ReleaseNotFoundError(
            f"{dataset}@{version} has no model {model!r}; it has: {', '.join(models) or 'none'}"
        )
    entry = models[model]
    card = json.loads(store.read_verified(dataset, version, entry["card"]))
    return ReleasedModel(store.read_verified(dataset, version, entry["file"]), card)
