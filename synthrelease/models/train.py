"""Train a downstream model on a synthetic table and export it as ONNX (no pickle).

Public side: the only data these functions read is a synthetic Parquet file, named by
path and identified by the sha256 of the exact bytes read. Training is deterministic
(fixed seed, one thread, a fixed ONNX graph name), so the firewall can re-train a model
from the release's synthetic table and compare bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from synthrelease.errors import ModelError, PrivacyError
from synthrelease.models.features import (
    Feature,
    as_frame,
    encode_inputs,
    encode_target,
)
from synthrelease.spec import DownstreamModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

SEED = 0
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
DEFAULT_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "random_forest": {"n_estimators": 50, "max_depth": 12, "min_samples_leaf": 5},
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
    "ridge": {"alpha": 1.0},
}


@dataclass(frozen=True)
class TrainedModel:
    """An exported model and what it was trained on (public values only)."""

    onnx: bytes
    features: tuple[Feature, ...]
    target: Feature
    params: Mapping[str, Any]
    table_sha256: str
    rows: int
    classes: tuple[str, ...] = field(default=())
    input_names: tuple[str, ...] = field(default=())


def resolved_params(model: DownstreamModel) -> dict[str, Any]:
    return {**DEFAULT_PARAMS[model.algorithm], **model.params}


def _estimator(
    model: DownstreamModel, features: tuple[Feature, ...], params: Mapping[str, Any]
) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    floats = [f.name for f in features if f.input_type == "float"]
    strings = [f.name for f in features if f.input_type == "string"]
    linear = model.algorithm in ("logistic_regression", "ridge")
    parts = []
    if floats:
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if linear:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), floats))
    if strings:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings))
    p = dict(params)
    if model.algorithm == "random_forest":
        cls = RandomForestClassifier if model.kind == "classifier" else RandomForestRegressor
        head = cls(
            n_estimators=int(p["n_estimators"]),
            max_depth=int(p["max_depth"]),
            min_samples_leaf=int(p["min_samples_leaf"]),
            random_state=SEED,
            n_jobs=1,
        )
    elif model.algorithm == "logistic_regression":
        head = LogisticRegression(C=float(p["C"]), max_iter=int(p["max_iter"]))
    else:
        head = Ridge(alpha=float(p["alpha"]))
    return Pipeline([("prepare", ColumnTransformer(parts)), ("model", head)])


def _to_onnx(
    pipe: Any, model: DownstreamModel, features: tuple[Feature, ...]
) -> tuple[bytes, tuple[str, ...]]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial = [
        (
            f.name,
            FloatTensorType([None, 1]) if f.input_type == "float" else StringTensorType([None, 1]),
        )
        for f in features
    ]
    options = {id(pipe.steps[-1][1]): {"zipmap": False}} if model.kind == "classifier" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = convert_sklearn(
                pipe, initial_types=initial, target_opset=TARGET_OPSET, options=options
            )
    except Exception as exc:
        raise ModelError(
            f"models.{model.name}: ONNX export failed ({type(exc).__name__})"
        ) from None
    onx.graph.name = f"synthrelease_{model.name}"  # skl2onnx's default is a random uuid
    onx.doc_string = ""
    return onx.SerializeToString(), tuple(i.name for i in onx.graph.input)


def train_on_table(
    table_path: Path, model: DownstreamModel, features: tuple[Feature, ...], target: Feature
) -> TrainedModel:
    """Fit ``model`` on the synthetic Parquet table at ``table_path`` and export it."""
    if not isinstance(table_path, (str, Path)):
        raise PrivacyError("models train on a synthetic table file only (pass its path)")
    data = Path(table_path).read_bytes()
    frame = pd.read_parquet(io.BytesIO(data))
    if model.target not in frame.columns:
        raise ModelError(f"models.{model.name}: the table lacks target column {model.target!r}")
    y, mask = encode_target(frame[model.target], model.kind, target)
    x = as_frame(encode_inputs(frame.loc[mask].reset_index(drop=True), features))
    if len(y) < 2:
        raise ModelError(f"models.{model.name}: the synthetic table has too few rows with a target")
    classes: tuple[str, ...] = ()
    if model.kind == "classifier" and len(set(y.tolist())) < 2:
        raise ModelError(f"models.{model.name}: the synthetic target has a single class")
    params = resolved_params(model)
    pipe = _estimator(model, features, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(x, y)
    if model.kind == "classifier":
        classes = tuple(str(c) for c in pipe.classes_)
    onnx_bytes, input_names = _to_onnx(pipe, model, features)
    log.info("trained model", extra={"model": model.name, "algorithm": model.algorithm})
    return TrainedModel(
        onnx=onnx_bytes,
        features=features,
        target=target,
        params=params,
        table_sha256=hashlib.sha256(data).hexdigest(),
        rows=int(len(y)),
        classes=classes,
        input_names=input_names,
    )


def reproduce(card: Mapping[str, Any], table_path: Path) -> bytes:
    """Re-train the model a card describes from ``table_path``; returns the ONNX bytes."""
    try:
        features = tuple(Feature.from_dict(f) for f in card["features"])
        target = Feature.from_dict(card["target"])
        model = DownstreamModel(
            name=card["name"],
            kind=card["kind"],
            target=target.name,
            algorithm=card["algorithm"],
            features=tuple(f.name for f in features),
            params=dict(card["params"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ModelError("a model card does not describe a trainable model") from None
    return train_on_table(table_path, model, features, target).onnx
