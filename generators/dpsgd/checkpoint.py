"""Checkpoints of a DP-SGD fit: JSON plus an npz of plain arrays (no pickle).

A checkpoint lives in the private workspace (it holds a partly trained model and the DP
measurements made so far). It stores what resuming needs so that nothing is measured or
charged twice: the plan (the DP row count, the DP domain estimates, the calibrated noise
multiplier, sample rate and step count: all DP outputs or public numbers), the step
reached, and the model and optimizer state (post-processing of noisy gradients). The
noise generators' states are *not* stored: a resumed fit reseeds them from the noise
source it is given, which is as private as continuing the old stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthrelease.errors import GeneratorError

ARRAYS = "checkpoint.npz"
META_KEY = "__meta__"
FORMAT = 1


def module_arrays(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}{k}": v.detach().to("cpu", torch.float32).numpy() for k, v in state.items()}


def module_state(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    return {
        k[len(prefix) :]: torch.from_numpy(np.array(v))
        for k, v in arrays.items()
        if k.startswith(prefix)
    }


def optimizer_arrays(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """torch optimizer ``state_dict()`` -> (JSON-able groups, arrays)."""
    arrays: dict[str, np.ndarray] = {}
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            arrays[f"opt.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().numpy()
    return {"param_groups": state["param_groups"]}, arrays


def optimizer_state(
    meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], device: torch.device
) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        if not name.startswith("opt."):
            continue
        _, idx, key = name.split(".", 2)
        tensor = torch.from_numpy(np.array(value))
        state.setdefault(int(idx), {})[key] = tensor if key == "step" else tensor.to(device)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training(
    path: Path,
    meta: Mapping[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    averaged: Sequence[torch.Tensor],
) -> None:
    """A checkpoint of a fit in progress: ``meta`` plus the model's, the optimizer's and
    the averaged iterates' state (read back by :func:`training_state`)."""
    groups, opt_arrays = optimizer_arrays(optimizer.state_dict())
    save_checkpoint(
        path,
        {**meta, "optimizer": groups},
        {
            **module_arrays(model.state_dict(), "model."),
            **opt_arrays,
            **{f"avg.{i}": a.cpu().numpy() for i, a in enumerate(averaged)},
        },
    )


def training_state(
    meta: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    model: torch.nn.Module,
    device: torch.device,
) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """(optimizer state, averaged iterates) stored by :func:`save_training`; the model's
    own state is read with ``module_state(arrays, "model.")``."""
    averaged = [torch.from_numpy(arrays[f"avg.{i}"]) for i in range(len(list(model.parameters())))]
    return optimizer_state(meta["optimizer"], arrays, device), averaged


def save_checkpoint(path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write one file atomically (metadata inside the npz): a crash leaves the previous
    checkpoint whole, so the step count and the model can never disagree."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    doc = json.dumps({"format": FORMAT, **meta}).encode()
    tmp = path / (ARRAYS + ".tmp.npz")
    # numeric arrays only: an object array (a pickle) is refused here, and
    # load_checkpoint reads with allow_pickle=False too
    np.savez(tmp, allow_pickle=False, **arrays, **{META_KEY: np.frombuffer(doc, dtype=np.uint8)})
    os.replace(tmp, path / ARRAYS)


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The stored (meta, arrays), or None when ``path`` holds no checkpoint."""
    if not (path / ARRAYS).exists():
        return None
    try:
        with np.load(path / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise GeneratorError(
            f"cannot read the checkpoint in {path}: {type(exc).__name__}"
        ) from None
    if meta.get("format") != FORMAT:
        raise GeneratorError(f"{path}: unsupported checkpoint format")
    return meta, arrays
