"""The DP-SGD training loop: Poisson batches drawn by index, clipped per-row gradients
through opacus, Gaussian noise from
:class:`~synthrelease.generators.dpsgd.randomness.StepRandomness`.

``batches`` holds the encoded *sensitive* table (a tensor, or the code store read by
index: :mod:`~synthrelease.generators.dpsgd.batches`): this module never logs, returns
or stores anything computed from it except the model and optimizer state
(post-processing of the noisy gradients). The training loss is a non-DP statistic of
the rows, so progress lines carry it only when the caller opts in (``log_loss``).

One private step (``noise_multiplier`` set):

1. a Poisson sample of the rows at ``sample_rate``
   (:func:`~synthrelease.generators.dpsgd.randomness.poisson_indices`: a binomial batch
   size, then that many distinct rows, O(batch) whatever the table; the rate must lie on
   the public grid of ``public_sample_rate``, so that the accounted and the used rate
   are the same number), gathered by index and moved to the device;
2. forward and one backward of the summed per-row loss; opacus'
   ``GradSampleModuleFastGradientClipping`` hooks call our exact per-row norm sampler;
3. clip coefficients ``min(1, C / ||g_i||)`` from opacus, and the sum of clipped per-row
   gradients by book-keeping (one matrix product per layer);
4. opacus' ``DPOptimizerFastGradientClipping`` adds N(0, (noise_multiplier C)^2) to every
   coordinate, drawn by ``StepRandomness.gaussian`` as opacus' ``secure_mode`` does
   (four draws, summed, halved), divides by the expected batch size and lets Adam step.
   An empty batch still takes a noise-only step.

Non-DP values (the opt-in training loss, throughput, the step of a NaN abort) go only to
the ``synthrelease.private.dpsgd`` logger, never to this module's public one.

CPU threads (:func:`cpu_threads`): torch's default, one intra-op thread per core, spins
in OpenMP barriers, and with other processes on the cores each step waits for a
descheduled thread. ``bench/bench_dpsgd_scale.py --stall`` on a 2-core machine that other
jobs kept busy (2-epoch fit on Adult, batch 1024, hidden 256x256): 67 s at torch's 2
threads against 7.5 s at 1; with 2 more CPU-bound processes beside it, 52 s against 23 s
(8.4 s of CPU: the rest is its fair share of the cores). ``OMP_WAIT_POLICY=PASSIVE``
also avoids the stall (9.8 s, 16 s), but only when set before torch loads, which a
library cannot do; so the generator's ``threads`` defaults to 1.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import (  # opacus 1.6 internals, as its add_noise uses
    _check_processed_flag,
    _mark_as_processed,
)

from synthrelease.errors import GeneratorError
from synthrelease.generators.dpsgd.batches import Batches
from synthrelease.generators.dpsgd.model import MADE, book_keeping_grads
from synthrelease.generators.dpsgd.randomness import (
    StepRandomness,
    poisson_indices,
    public_sample_rate,
)

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.dpsgd")  # private workspace only
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


def select_device(want: Literal["cpu", "cuda", "auto"]) -> torch.device:
    """The training device: ``auto`` is CUDA where available; ``cuda`` without a GPU fails."""
    if want == "cuda" and not torch.cuda.is_available():
        raise GeneratorError("dpsgd: device 'cuda' requested but no CUDA GPU is available")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")


def use_autocast(amp: Literal["auto", "on", "off"], device: torch.device) -> bool:
    """bf16 autocast: ``on``, or ``auto`` on a GPU."""
    return amp == "on" or (amp == "auto" and device.type == "cuda")


@contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """torch's intra-op CPU threads at ``threads`` inside (0: torch's setting as it is),
    restored after. Process-wide: two fits in threads of one process share it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dp_optimizer(
    base: torch.optim.Optimizer, cfg: LoopConfig, randomness: StepRandomness
) -> torch.optim.Optimizer:
    """opacus' fast-gradient-clipping DP optimizer with its noise drawn by ``randomness``."""

    class _Optimizer(DPOptimizerFastGradientClipping):
        def add_noise(self) -> None:  # opacus 1.6's, with our noise draw
            std = self.noise_multiplier * self.max_grad_norm
            for p in self.params:
                _check_processed_flag(p.summed_grad)
                noise = randomness.gaussian(std, p.summed_grad)
                p.grad = (p.summed_grad + noise).view_as(p)
                _mark_as_processed(p.summed_grad)

    return _Optimizer(
        base,
        noise_multiplier=cfg.noise_multiplier,
        max_grad_norm=cfg.max_grad_norm,
        expected_batch_size=cfg.expected_batch,
        loss_reduction="mean",
        generator=None,
        secure_mode=cfg.secure,
    )


def train_loop(
    model: MADE,
    batches: Batches,
    cfg: LoopConfig,
    *,
    randomness: StepRandomness,
    start_step: int = 0,
    optimizer_state: Mapping[str, Any] | None = None,
    epsilon_at: Callable[[int], float] | None = None,
    on_checkpoint: Callable[[int, MADE, torch.optim.Optimizer, list[torch.Tensor]], None]
    | None = None,
    averaged: list[torch.Tensor] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> None:
    """Run steps ``start_step .. cfg.steps - 1``; raises GeneratorError on a NaN loss."""
    private = cfg.noise_multiplier is not None
    if cfg.sample_rate != public_sample_rate(cfg.sample_rate):
        raise GeneratorError("dpsgd: the sample rate is not on the public 2^-40 grid")
    device = batches.device
    params = list(model.parameters())
    base = torch.optim.Adam(params, lr=cfg.lr)
    if optimizer_state is not None:
        base.load_state_dict(dict(optimizer_state))
    opt: torch.optim.Optimizer = base
    gsm = None
    if private:
        # strict=False: the only buffers are the public masks/indices (no data statistics).
        gsm = GradSampleModuleFastGradientClipping(
            model,
            batch_first=True,
            loss_reduction="sum",
            strict=False,
            max_grad_norm=cfg.max_grad_norm,
            use_ghost_clipping=True,
        )
        opt = _dp_optimizer(base, cfg, randomness)
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
                randomness.begin_step()  # secure: fresh OS entropy for this step
                batch = batches.take(poisson_indices(batches.rows, cfg.sample_rate, randomness))
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
                        torch._foreach_lerp_(
                            avg,
                            [p.detach() for p in params],
                            1.0 - min(cfg.ema, (1 + done) / (10 + done)),
                        )
                if (done % check_every == 0 or done == cfg.steps) and bool(bad):
                    # the step is a statistic of the rows: private log only, not the error
                    private_logger.warning(
                        "dpsgd: the training loss became NaN or infinite by step %d", done
                    )
                    raise GeneratorError(
                        "dpsgd: the training loss became NaN or infinite; no model is "
                        "returned (try a smaller 'lr' or 'max_grad_norm')"
                    )
                if on_progress is not None and (done % every == 0 or done == cfg.steps):
                    elapsed = time.perf_counter() - start
                    loss = float(loss_sum / loss_rows.clamp(min=1)) if cfg.log_loss else None
                    loss_sum.zero_()
                    loss_rows.zero_()
                    on_progress(
                        Progress(
                            epoch=done / cfg.steps_per_epoch,
                            step=done,
                            steps=cfg.steps,
                            epsilon=epsilon_at(done) if epsilon_at is not None else None,
                            loss=loss,
                            elapsed_s=elapsed,
                            rows_per_s=(done - start_step)
                            * cfg.expected_batch
                            / max(elapsed, 1e-9),
                        )
                    )
                if (
                    on_checkpoint is not None
                    and cfg.checkpoint_every
                    and done % cfg.checkpoint_every == 0
                    and done < cfg.steps
                ):
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
