"""A published model, loaded for use: an onnxruntime session plus its card."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import ModelError
from synthrelease.models.features import Feature, encode_inputs


class ReleasedModel:
    """``predict(frame)`` / ``predict_proba(frame)`` over a DataFrame with the input
    columns; ``session`` is the onnxruntime ``InferenceSession``; ``card`` the model card."""

    def __init__(self, onnx_bytes: bytes, card: Mapping[str, Any]) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(
                f"cannot load model {card.get('name')!r} ({type(exc).__name__})"
            ) from None
        self.card = dict(card)
        self.features = tuple(Feature.from_dict(f) for f in card["features"])
        self.kind = str(card["kind"])
        self.classes = tuple(card.get("classes") or ())

    @property
    def name(self) -> str:
        return str(self.card["name"])

    def _run(self, frame: pd.DataFrame) -> list[np.ndarray]:
        # ONNX input names are sanitised column names ('-' -> '_'); the order is the card's
        names = [i.name for i in self.session.get_inputs()]
        feed = encode_inputs(frame, self.features)
        if len(names) != len(feed):
            raise ModelError(f"model {self.name!r}: its card does not match its inputs")
        return self.session.run(None, dict(zip(names, feed.values())))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = self._run(frame)[0]
        return np.asarray(out).reshape(-1)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind != "classifier":
            raise ModelError(f"model {self.name!r} is a {self.kind}: it has no probabilities")
        return np.asarray(self._run(frame)[1])

    def __repr__(self) -> str:
        return f"<ReleasedModel {self.name!r}: {self.kind}, {len(self.features)} inputs>"
