"""Evaluate the published models on the real holdout (train-synthetic / test-real).

Trusted reader (``reveal()``). The figures are computed on real rows, so they are not
covered by DP: they go to a private file in the run's workspace folder (owner-only),
never into the release, a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.models.features import Feature, encode_target
from synthrelease.models.runtime import ReleasedModel
from synthrelease.private.table import SensitiveTable

log = logging.getLogger(__name__)
EVAL_FILE = "models.json"


def _classifier_figures(
    model: ReleasedModel, frame: pd.DataFrame, y: np.ndarray
) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    pred = model.predict(frame).astype(str)
    values, counts = np.unique(y, return_counts=True)
    figures = {
        "accuracy": float((pred == y).mean()),
        "majority_class_accuracy": float(counts.max() / counts.sum()),
        "auc": float("nan"),
    }
    if len(model.classes) == 2 and len(values) == 2:
        proba = model.predict_proba(frame)[:, 1]
        figures["auc"] = float(roc_auc_score((y == model.classes[1]).astype(int), proba))
    return figures


def _regressor_figures(
    model: ReleasedModel, frame: pd.DataFrame, y: np.ndarray
) -> dict[str, float]:
    pred = model.predict(frame).astype(np.float64)
    resid = y - pred
    total = float(((y - y.mean()) ** 2).sum())
    return {
        "r2": float(1 - (resid**2).sum() / total) if total > 0 else float("nan"),
        "mae": float(np.abs(resid).mean()),
        "mae_predicting_mean": float(np.abs(y - y.mean()).mean()),
    }


def evaluate_models(
    models: Mapping[str, tuple[bytes, Mapping[str, Any]]],
    *,
    holdout: SensitiveTable,
    out_dir: Path,
) -> Path:
    """``models``: name -> (ONNX bytes, card). Writes ``<out_dir>/models.json``."""
    if not isinstance(holdout, SensitiveTable):
        raise TypeError("holdout must be a SensitiveTable")
    frame = holdout.reveal()
    results: dict[str, Any] = {}
    for name, (onnx_bytes, card) in models.items():
        model = ReleasedModel(onnx_bytes, card)
        target = Feature.from_dict(card["target"])
        y, mask = encode_target(frame[target.name], model.kind, target)
        rows = frame.loc[mask].reset_index(drop=True)
        if len(y) == 0:
            results[name] = {"error": "the holdout has no rows with a target"}
            continue
        figures = (_classifier_figures if model.kind == "classifier" else _regressor_figures)(
            model, rows, y
        )
        results[name] = {
            "kind": model.kind,
            "algorithm": card["algorithm"],
            "trained_on": card["training_data"]["release"],
            "figures": figures,
        }
    path = Path(out_dir) / EVAL_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"note": "train-synthetic / test-real; internal, not covered by DP", "models": results},
            fh,
            indent=2,
        )
    log.info("models evaluated on the holdout (internal)", extra={"models": len(results)})
    return path
