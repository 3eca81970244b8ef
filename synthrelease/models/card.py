"""Model cards: what a published model is, what it was trained on, what it is for.

Public values only: the spec's public schema, the DP accounting of the release, the
synthetic training table's hash and row count. No figure computed on real rows (the
holdout evaluation stays in the private workspace).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from synthrelease.models.train import TARGET_OPSET, TrainedModel
from synthrelease.spec import DownstreamModel

CARD_FORMAT = 1


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def build_card(
    model: DownstreamModel,
    trained: TrainedModel,
    *,
    release_id: str,
    table_rel: str,
    privacy: Mapping[str, Any],
) -> dict[str, Any]:
    eps, delta = float(privacy["epsilon"]), float(privacy["delta"])
    outputs = ["label", "probabilities"] if model.kind == "classifier" else ["variable"]
    return {
        "format": CARD_FORMAT,
        "name": model.name,
        "kind": model.kind,
        "algorithm": model.algorithm,
        "params": dict(trained.params),
        "target": trained.target.to_dict(),
        "classes": list(trained.classes),
        "features": [
            {**f.to_dict(), "onnx_input": name}
            for f, name in zip(trained.features, trained.input_names, strict=True)
        ],
        "file": "model.onnx",
        "format_details": {
            "format": "ONNX",
            "opset": dict(TARGET_OPSET),
            "inputs": "one [n, 1] input per feature: float32 (NaN = null) or string ('' = null)",
            "outputs": outputs,
            "producer": f"scikit-learn {_version('scikit-learn')}, skl2onnx {_version('skl2onnx')}",
        },
        "training_data": {
            "release": release_id,
            "table": table_rel,
            "sha256": trained.table_sha256,
            "rows": trained.rows,
            "provenance": "synthetic",
        },
        "privacy": {
            "epsilon": eps,
            "delta": delta,
            "guarantee": (
                f"({eps:g}, {delta:g})-differential privacy for the individuals of the "
                "original table, inherited by post-processing: the model was trained only "
                "on the synthetic table of this release, which is itself the output of a DP "
                "generator. Training on it spends no further privacy budget."
            ),
        },
        "intended_use": (
            "Exploration, prototyping and teaching on data shaped like the original; a "
            "baseline to compare with models the custodian trains internally."
        ),
        "limitations": [
            "Trained on synthetic rows: it learns the relationships the DP generator kept "
            "(mostly low-order marginals) and misses others; expect lower accuracy than a "
            "model trained on the real data.",
            "Its performance on real data was measured only inside the private workspace "
            "and is not published (such figures are not covered by DP).",
            "Not for decisions about individuals.",
        ],
    }


def render_card(card: Mapping[str, Any]) -> str:
    """The card as Markdown (README.md beside the model)."""
    t = card["training_data"]
    feats = ", ".join(f"`{f['name']}` ({f['input']})" for f in card["features"])
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"A {card['kind']} ({card['algorithm']}) predicting `{card['target']['name']}`, in ONNX "
        f"(`{card['file']}`, opset {card['format_details']['opset']}).",
        "",
        "## Training data",
        f"- Release `{t['release']}`, table `{t['table']}` (sha256 `{t['sha256'][:16]}...`), "
        f"{t['rows']} synthetic rows. No real row was used.",
        "",
        "## Privacy",
        f"- {card['privacy']['guarantee']}",
        "",
        "## Inputs and outputs",
        f"- Inputs: {feats}.",
        f"- Outputs: {', '.join(card['format_details']['outputs'])}"
        + (f"; classes: {', '.join(card['classes'])}." if card["classes"] else "."),
        "",
        "## Intended use",
        f"- {card['intended_use']}",
        "",
        "## Limitations",
        *[f"- {item}" for item in card["limitations"]],
        "",
        "## Use",
        "```python",
        "import synthrelease",
        f"model = synthrelease.load_model({t['release'].split('@')[0]!r}, model={card['name']!r}, "
        f"version={t['release'].split('@')[1]!r})",
        "predictions = model.predict(frame)   # a DataFrame with the input columns",
        "```",
        "",
    ]
    return "\n".join(lines)
