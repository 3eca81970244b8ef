"""Training the DP-SGD network WITHOUT differential privacy: for benchmarks and attack
tests only (a baseline to compare the private model with).

The model it returns samples, but has no privacy report and refuses
:meth:`~synthrelease.generators.dpsgd.generator.DPSGDGenerator.save`, so no release can
use it. It reads a plain frame the caller holds, never a ``SensitiveTable``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from synthrelease.errors import GeneratorError
from synthrelease.generators.dpsgd.batches import TensorBatches
from synthrelease.generators.dpsgd.generator import DPSGDGenerator
from synthrelease.generators.dpsgd.model import MADE
from synthrelease.generators.dpsgd.randomness import StepRandomness, public_sample_rate
from synthrelease.generators.dpsgd.train import (
    LoopConfig,
    Progress,
    cpu_threads,
    select_device,
    train_loop,
    use_autocast,
)


def fit_nonprivate(
    gen: DPSGDGenerator,
    frame: pd.DataFrame,
    *,
    seed: int,
    progress: Callable[[Progress], None] | None = None,
) -> DPSGDGenerator:
    """Train the same model on ``frame`` WITHOUT DP: for benchmarks and attack tests only.

    Same network, batches (Poisson, rate ``batch_size / rows``), steps and optimizer as
    :meth:`DPSGDGenerator.fit`, minus clipping and noise. The result samples but refuses
    :meth:`~DPSGDGenerator.save` and has no privacy report; no release can use it.
    """
    if gen.discretiser is None:
        raise GeneratorError("fit_nonprivate needs every domain declared")
    p = gen.params
    device = select_device(p.device)
    disc = gen.discretiser
    codes = torch.from_numpy(disc.encode(frame[disc.names]).to_numpy(np.int64)).to(device)
    rows = codes.shape[0]
    q = public_sample_rate(p.batch_size / rows)
    per_epoch = max(1, round(1.0 / q))
    model = MADE(
        list(disc.sizes.values()), hidden=p.hidden, generator=torch.Generator().manual_seed(seed)
    ).to(device)
    cfg = LoopConfig(
        steps=p.epochs * per_epoch,
        sample_rate=q,
        expected_batch=q * rows,
        noise_multiplier=None,
        max_grad_norm=p.max_grad_norm,
        lr=p.lr,
        amp=use_autocast(p.amp, device),
        steps_per_epoch=per_epoch,
        ema=p.ema,
    )
    k = 2 * StepRandomness.per_stream(device)
    with cpu_threads(p.threads):
        train_loop(
            model,
            TensorBatches(codes),
            cfg,
            on_progress=progress,
            randomness=StepRandomness(device, seeds=range(seed + 1, seed + 1 + k)),
        )
    gen.model, gen.private, gen.report = model.cpu(), False, None
    return gen
