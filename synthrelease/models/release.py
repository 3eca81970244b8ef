"""The downstream models of one release: trained on its synthetic table, with cards.

Files are written into the run's private folder first (owner-only) and handed to the
store as :class:`~synthrelease.firewall.Artifact` objects; the firewall re-trains each
model from the synthetic table before the release becomes visible.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthrelease.firewall import CARD_NAME, Artifact, Provenance
from synthrelease.models.card import build_card, render_card
from synthrelease.models.features import feature_of, features_for
from synthrelease.models.train import train_on_table
from synthrelease.spec import ReleaseSpec

log = logging.getLogger(__name__)
MODEL_FILE = "model.onnx"


def model_dir(name: str) -> str:
    return f"models/{name}"


def train_release_models(
    spec: ReleaseSpec,
    *,
    table_rel: str,
    table_path: Path,
    out_dir: Path,
    release_id: str,
    privacy: Mapping[str, Any],
) -> dict[str, Artifact]:
    """Train every model the spec declares on ``table_path``; return the files to publish."""
    files: dict[str, Artifact] = {}
    for model in spec.models:
        features = features_for(model, spec.columns)
        target = feature_of(model.target, spec.columns[model.target])
        trained = train_on_table(Path(table_path), model, features, target)
        card = build_card(
            model, trained, release_id=release_id, table_rel=table_rel, privacy=privacy
        )
        folder = Path(out_dir) / model.name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / MODEL_FILE).write_bytes(trained.onnx)
        (folder / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True))
        (folder / "README.md").write_text(render_card(card))
        for path in folder.iterdir():
            path.chmod(0o600)
        rel = model_dir(model.name)
        files[f"{rel}/{MODEL_FILE}"] = Artifact(
            folder / MODEL_FILE, Provenance.TRAINED_ON_SYNTHETIC
        )
        files[f"{rel}/{CARD_NAME}"] = Artifact(folder / CARD_NAME, Provenance.METADATA)
        files[f"{rel}/README.md"] = Artifact(folder / "README.md", Provenance.METADATA)
    if spec.models:
        log.info(
            "trained downstream models on the synthetic table", extra={"models": len(spec.models)}
        )
    return files


def model_entries(spec: ReleaseSpec) -> list[dict[str, Any]]:
    """The manifest's ``models`` list (public: from the spec)."""
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "target": m.target,
            "algorithm": m.algorithm,
            "file": f"{model_dir(m.name)}/{MODEL_FILE}",
            "card": f"{model_dir(m.name)}/{CARD_NAME}",
        }
        for m in spec.models
    ]
