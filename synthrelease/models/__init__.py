"""Downstream models trained on synthetic data only, published as ONNX with a card.

- :mod:`~synthrelease.models.features`: the shared input encoding per declared type;
- :mod:`~synthrelease.models.train`: fit on a synthetic Parquet table, export ONNX,
  re-train from a card (the firewall's reproducibility check);
- :mod:`~synthrelease.models.card`: the model card (JSON + Markdown);
- :mod:`~synthrelease.models.release`: the models of one release;
- :mod:`~synthrelease.models.runtime`: :class:`ReleasedModel` for consumers.

Evaluation against the real holdout lives behind the trust boundary, in
:mod:`synthrelease.private.model_eval`. Heavy libraries (scikit-learn, skl2onnx,
onnxruntime) are imported by the submodules that need them, not here.
"""
