"""The DP-SGD training loop: Poisson batches drawn on the device, clipped per-row
gradients through opacus, Gaussian noise from a generator seeded by the NoiseSource.

``codes`` is the encoded *sensitive* table (a tensor derived from rows): this module
never logs, returns or stores anything computed from it except the model and optimizer
state (post-processing of the noisy gradients). The training loss is a non-DP statistic
of the rows, so progress lines carry it only when the caller opts in (``log_loss``).

One private step (``noise_multiplier`` set):

1. every row is in the batch independently with probability ``sample_rate`` (Poisson
   sampling, ``torch.rand`` on the device: no per-row DataLoader);
2. forward and one backward of the summed per-row loss; opacus'
   ``GradSampleModuleFastGradientClipping`` hooks call our exact per-row norm sampler;
3. clip coefficients ``min(1, C / ||g_i||)`` from opacus, and the sum of clipped per-row
   gradients by book-keeping (one matrix product per layer);
4. opacus' ``DPOptimizerFastGradientClipping`` adds N(0, (noise_multiplier C)^2) to every
   coordinate (``secure_mode`` with a secure NoiseSource), divides by the expected batch
   size and lets Adam step. An empty batch still takes a noise-only step.

The same loop with ``noise_multiplier=None`` trains the same model without DP (for
benchmarks and attack tests only).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from synthrelease.errors import GeneratorError
from synthrelease.generators.dpsgd_model import MADE, book_keeping_grads

logger = logging.getLogger(__name__)
NAN_CHECK_EVERY = 50  # steps between device syncs on GPU (every step on CPU)


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    sample_rate: float
    expected_batch: float
    noise_multiplier: float | None  # None: no DP (benchmarks and tests only)
    max_grad_norm: float
    lr: float
    amp: bool = False
    steps_per_epoch: int = 1
    report_every: int = 0  # steps between progress reports; 0: every epoch
    checkpoint_every: int = 0
    log_loss: bool = False
    secure: bool = False
    ema: float = 0.0  # decay of the average of the iterates returned (0: last iterate)


@dataclass(frozen=True)
class Progress:
    epoch: float
    step: int
    steps: int
    epsilon: float | None
    loss: float | None  # mean per-row NLL since the last report (non-DP; opt-in only)
    elapsed_s: float
    rows_per_s: float  # expected rows (q * DP row count) per second


def poisson_indices(rows: int, rate: float, generator: torch.Generator,
                    device: torch.device) -> torch.Tensor:
    """Indices of a Poisson sample: each row kept independently with prob. ``rate``."""
    keep = torch.rand(rows, generator=generator, device=device) < rate
    return keep.nonzero().squeeze(1)


def train_loop(
    model: MADE, codes: torch.Tensor, cfg: LoopConfig, *, sample_generator: torch.Generator,
    noise_generator: torch.Generator | None, start_step: int = 0,
    optimizer_state: Mapping[str, Any] | None = None,
    epsilon_at: Callable[[int], float] | None = None,
    on_checkpoint: Callable[[int, MADE, torch.optim.Optimizer, list[torch.Tensor]], None] | None = None,
    averaged: list[torch.Tensor] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> None:
    """Run steps ``start_step .. cfg.steps - 1``; raises GeneratorError on a NaN loss."""
    private = cfg.noise_multiplier is not None
    device = codes.device
    params = list(model.parameters())
    base = torch.optim.Adam(params, lr=cfg.lr)
    if optimizer_state is not None:
        base.load_state_dict(dict(optimizer_state))
    opt: torch.optim.Optimizer = base
    gsm = None
    if private:
        from opacus.grad_sample import GradSampleModuleFastGradientClipping
        from opacus.optimizers import DPOptimizerFastGradientClipping

        # strict=False: the only buffers are the public masks/indices (no data statistics).
        gsm = GradSampleModuleFastGradientClipping(
            model, batch_first=True, loss_reduction="sum", strict=False,
            max_grad_norm=cfg.max_grad_norm, use_ghost_clipping=True)
        opt = DPOptimizerFastGradientClipping(
            base, noise_multiplier=cfg.noise_multiplier, max_grad_norm=cfg.max_grad_norm,
            expected_batch_size=cfg.expected_batch, loss_reduction="mean",
            generator=noise_generator, secure_mode=cfg.secure)
        model.set_book_keeping(True)
    check_every = 1 if device.type == "cpu" else NAN_CHECK_EVERY
    avg = [a.to(device) for a in averaged] if averaged else [p.detach().clone() for p in params]
    every = cfg.report_every or cfg.steps_per_epoch
    bad = torch.zeros((), dtype=torch.bool, device=device)
    loss_sum = torch.zeros((), device=device)
    loss_rows = torch.zeros((), device=device)
    start = time.perf_counter()
    model.train()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for step in range(start_step, cfg.steps):
                batch = codes[poisson_indices(codes.shape[0], cfg.sample_rate, sample_generator, device)]
                opt.zero_grad(set_to_none=True)
                if batch.shape[0] == 0:
                    for p in params:
                        p.grad = torch.zeros_like(p)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                        nll = model.nll(batch)
                    total = nll.sum()
                    bad |= ~torch.isfinite(total)
                    if cfg.log_loss:
                        loss_sum += total.detach()
                        loss_rows += nll.shape[0]
                    if private:
                        total.backward()
                        assert gsm is not None
                        book_keeping_grads(model.masked_layers, gsm.get_clipping_coef())
                    else:
                        (total / batch.shape[0]).backward()
                opt.step()
                done = step + 1
                if cfg.ema:  # averaging iterates is post-processing: free under DP
                    with torch.no_grad():
                        torch._foreach_lerp_(avg, [p.detach() for p in params],
                                             1.0 - min(cfg.ema, (1 + done) / (10 + done)))
                if (done % check_every == 0 or done == cfg.steps) and bool(bad):
                    raise GeneratorError(
                        f"dpsgd: the training loss became NaN or infinite by step {done}; "
                        "no model is returned (try a smaller 'lr' or 'max_grad_norm')")
                if on_progress is not None and (done % every == 0 or done == cfg.steps):
                    elapsed = time.perf_counter() - start
                    loss = float(loss_sum / loss_rows.clamp(min=1)) if cfg.log_loss else None
                    loss_sum.zero_()
                    loss_rows.zero_()
                    on_progress(Progress(
                        epoch=done / cfg.steps_per_epoch, step=done, steps=cfg.steps,
                        epsilon=epsilon_at(done) if epsilon_at is not None else None,
                        loss=loss, elapsed_s=elapsed,
                        rows_per_s=(done - start_step) * cfg.expected_batch / max(elapsed, 1e-9)))
                if (on_checkpoint is not None and cfg.checkpoint_every
                        and done % cfg.checkpoint_every == 0 and done < cfg.steps):
                    on_checkpoint(done, model, base, avg)
    finally:
        if gsm is not None:
            gsm.remove_hooks()
            gsm._close()
        model.set_book_keeping(False)
        model.eval()
    if cfg.ema:
        with torch.no_grad():
            for p, a in zip(params, avg):
                p.copy_(a)
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise GeneratorError("dpsgd: the model's parameters are not finite; no model is returned")
