"""The DP-SGD training loop: Poisson batches drawn on the device, clipped per-row
gradients through opacus, Gaussian noise from :class:`StepRandomness`.

Noise source: with a secure NoiseSource, every torch generator below is re-keyed from
``os.urandom`` before every step (CPU: the whole MT19937 state, 19968 bits; CUDA: the
Philox key and offset, 125 bits, two generators per stream), so each step's sampling and
each step's Gaussian noise rest on at least 128 fresh bits of OS entropy; with a seeded
NoiseSource the same generators are seeded once from it (reproducible, not private).

``codes`` is the encoded *sensitive* table (a tensor derived from rows): this module
never logs, returns or stores anything computed from it except the model and optimizer
state (post-processing of the noisy gradients). The training loss is a non-DP statistic
of the rows, so progress lines carry it only when the caller opts in (``log_loss``).

One private step (``noise_multiplier`` set):

1. every row is in the batch independently with probability ``sample_rate`` (Poisson
   sampling: a float64 uniform per row, on the device, compared with ``sample_rate``,
   which must lie on the public grid of :func:`public_sample_rate`, multiples of 2^-40,
   so that the accounted and the used rate are the same number; no per-row DataLoader);
2. forward and one backward of the summed per-row loss; opacus'
   ``GradSampleModuleFastGradientClipping`` hooks call our exact per-row norm sampler;
3. clip coefficients ``min(1, C / ||g_i||)`` from opacus, and the sum of clipped per-row
   gradients by book-keeping (one matrix product per layer);
4. opacus' ``DPOptimizerFastGradientClipping`` adds N(0, (noise_multiplier C)^2) to every
   coordinate, drawn by :meth:`StepRandomness.gaussian` as opacus' ``secure_mode`` does
   (four draws, summed, halved), divides by the expected batch size and lets Adam step.
   An empty batch still takes a noise-only step.

Non-DP values (the opt-in training loss, throughput, the step of a NaN abort) go only to
the ``synthrelease.private.dpsgd`` logger, never to this module's public one.

The same loop with ``noise_multiplier=None`` trains the same model without DP (for
benchmarks and attack tests only).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from synthrelease.errors import GeneratorError
from synthrelease.generators.dpsgd.model import MADE, book_keeping_grads
from synthrelease.generators.noise import NoiseSource

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.dpsgd")  # private workspace only
NAN_CHECK_EVERY = 50  # steps between device syncs on GPU (every step on CPU)
SAMPLE_RATE_GRID_BITS = 40  # Poisson sample rates are multiples of 2^-40


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


def public_sample_rate(rate: float) -> float:
    """``min(rate, 1)`` rounded DOWN to a multiple of 2^-40: the Poisson rate q that both
    the sampler and the accountant use (rounding down only lowers the true spend).

    Exact: scaling by a power of two and ``floor`` introduce no rounding error, and a
    float64 uniform on the 2^-53 grid is below such a q with probability exactly q.
    """
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0:
        raise GeneratorError("dpsgd: the Poisson sample rate must be a positive number")
    scale = float(2**SAMPLE_RATE_GRID_BITS)
    q = math.floor(min(rate, 1.0) * scale) / scale
    if q <= 0:
        raise GeneratorError("dpsgd: the Poisson sample rate is below 2^-40; "
                             "use a larger 'batch_size'")
    return q


def _generator_seed(noise: NoiseSource) -> int:
    """64 bits from a (seeded) noise source for a torch generator."""
    u = noise.uniform(2)
    return ((int(u[0] * 2**53) << 11) ^ int(u[1] * 2**53)) & (2**64 - 1)


# torch 2.x CPU generator state (CPUGeneratorImplState, 5056 bytes, little-endian): seed
# u64 | left i32 | seeded i32 | next u64 | 624 MT19937 words as u64 | normal_x, _y, _rho
# f64 | normal_is_valid i32 (+pad) | next_float_normal_sample f32 | its valid flag.
_CPU_STATE_BYTES, _MT_WORDS, _MT_AT = 5056, 624, 24
_NORMAL_VALID_AT, _FLOAT_NORMAL_VALID_AT = 5040, 5052


def _rekey(generator: torch.Generator) -> None:
    """Replace ``generator``'s whole key/state with fresh bits from ``os.urandom``."""
    state = generator.get_state()
    if generator.device.type == "cpu":
        buf = state.numpy().copy()
        if buf.size != _CPU_STATE_BYTES:
            raise GeneratorError("dpsgd: unsupported torch CPU generator state layout")
        words = np.frombuffer(os.urandom(4 * _MT_WORDS), dtype="<u4").astype("<u8")
        buf[_MT_AT:_MT_AT + 8 * _MT_WORDS] = words.view(np.uint8)
        buf[8:24] = np.frombuffer(np.array([1, 1], "<i4").tobytes() + bytes(8), np.uint8)
        buf[_NORMAL_VALID_AT:_NORMAL_VALID_AT + 4] = 0  # no cached Box-Muller sample
        buf[_FLOAT_NORMAL_VALID_AT] = 0
        generator.set_state(torch.from_numpy(buf))
        if not np.array_equal(generator.get_state().numpy()[8:_MT_AT + 8 * _MT_WORDS],
                              buf[8:_MT_AT + 8 * _MT_WORDS]):
            raise GeneratorError("dpsgd: unsupported torch CPU generator state layout")
    else:  # Philox: 64-bit key and a 64-bit offset that must be a multiple of 4
        raw = os.urandom(16)
        offset = int.from_bytes(raw[8:], "little") & (2**63 - 4)
        generator.set_state(torch.frombuffer(bytearray(raw[:8] + offset.to_bytes(8, "little")),
                                             dtype=torch.uint8))


class StepRandomness:
    """The randomness of DP-SGD steps: Poisson membership and Gaussian noise.

    Each of the two streams (sampling, noise) uses ``per_stream(device)`` torch generators
    (one on CPU, two on CUDA) whose draws are combined, so that predicting a draw needs
    every generator's key. Secure mode (``seeds=None``): :meth:`begin_step` re-keys every
    generator from ``os.urandom`` (CPU: 19968 bits; CUDA: 125 bits each). Seeded mode:
    seeded once from ``seeds`` and never re-keyed (reproducible; no privacy).
    """

    def __init__(self, device: torch.device, *, seeds: Sequence[int] | None) -> None:
        k = self.per_stream(device)
        self.secure = seeds is None
        self.device = device
        gens = [torch.Generator(device) for _ in range(2 * k)]
        if seeds is not None:
            if len(seeds) != 2 * k:
                raise GeneratorError("dpsgd: wrong number of generator seeds")
            for g, seed in zip(gens, seeds):
                g.manual_seed(int(seed))
        self._sample, self._noise = gens[:k], gens[k:]
        self.begin_step()

    @staticmethod
    def per_stream(device: torch.device) -> int:
        return 1 if torch.device(device).type == "cpu" else 2

    @classmethod
    def from_noise(cls, noise: NoiseSource, device: torch.device) -> "StepRandomness":
        """Secure noise: OS entropy at every step; seeded noise: seeds drawn from it."""
        if noise.is_secure:
            return cls(device, seeds=None)
        k = 2 * cls.per_stream(device)
        return cls(device, seeds=[_generator_seed(noise) for _ in range(k)])

    def begin_step(self) -> None:
        """Secure mode: fresh OS entropy for every generator (call before each step)."""
        if self.secure:
            for g in (*self._sample, *self._noise):
                _rekey(g)

    def uniforms(self, rows: int) -> torch.Tensor:
        """``rows`` float64 uniforms on [0, 1), multiples of 2^-53: the first generator's
        draw minus the others', modulo 1 (exact in float64)."""
        u = torch.rand(rows, generator=self._sample[0], device=self.device, dtype=torch.float64)
        for g in self._sample[1:]:
            u -= torch.rand(rows, generator=g, device=self.device, dtype=torch.float64)
            u += (u < 0).to(u.dtype)
        return u

    def gaussian(self, std: float, reference: torch.Tensor) -> torch.Tensor:
        """N(0, std^2) per coordinate of ``reference``: four draws (round-robin over the
        noise generators) summed and halved, as opacus' ``secure_mode`` does."""
        out = torch.zeros_like(reference)
        if std == 0:
            return out
        for i in range(4):
            out += torch.normal(0.0, std, size=tuple(reference.shape), device=reference.device,
                                dtype=reference.dtype, generator=self._noise[i % len(self._noise)])
        return out / 2


def poisson_indices(rows: int, rate: float, randomness: StepRandomness) -> torch.Tensor:
    """Indices of a Poisson sample: each row kept independently with prob. ``rate``
    (float64 comparison; ``rate`` on the public grid gives probability exactly ``rate``)."""
    keep = randomness.uniforms(rows) < rate
    return keep.nonzero().squeeze(1)


def _dp_optimizer(base: torch.optim.Optimizer, cfg: "LoopConfig",
                  randomness: StepRandomness) -> torch.optim.Optimizer:
    """opacus' fast-gradient-clipping DP optimizer with its noise drawn by ``randomness``."""
    from opacus.optimizers import DPOptimizerFastGradientClipping
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    class _Optimizer(DPOptimizerFastGradientClipping):
        def add_noise(self) -> None:  # opacus 1.6's, with our noise draw
            std = self.noise_multiplier * self.max_grad_norm
            for p in self.params:
                _check_processed_flag(p.summed_grad)
                noise = randomness.gaussian(std, p.summed_grad)
                p.grad = (p.summed_grad + noise).view_as(p)
                _mark_as_processed(p.summed_grad)

    return _Optimizer(base, noise_multiplier=cfg.noise_multiplier, max_grad_norm=cfg.max_grad_norm,
                      expected_batch_size=cfg.expected_batch, loss_reduction="mean",
                      generator=None, secure_mode=cfg.secure)


def train_loop(
    model: MADE, codes: torch.Tensor, cfg: LoopConfig, *, randomness: StepRandomness,
    start_step: int = 0,
    optimizer_state: Mapping[str, Any] | None = None,
    epsilon_at: Callable[[int], float] | None = None,
    on_checkpoint: Callable[[int, MADE, torch.optim.Optimizer, list[torch.Tensor]], None] | None = None,
    averaged: list[torch.Tensor] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> None:
    """Run steps ``start_step .. cfg.steps - 1``; raises GeneratorError on a NaN loss."""
    private = cfg.noise_multiplier is not None
    if cfg.sample_rate != public_sample_rate(cfg.sample_rate):
        raise GeneratorError("dpsgd: the sample rate is not on the public 2^-40 grid")
    device = codes.device
    params = list(model.parameters())
    base = torch.optim.Adam(params, lr=cfg.lr)
    if optimizer_state is not None:
        base.load_state_dict(dict(optimizer_state))
    opt: torch.optim.Optimizer = base
    gsm = None
    if private:
        from opacus.grad_sample import GradSampleModuleFastGradientClipping

        # strict=False: the only buffers are the public masks/indices (no data statistics).
        gsm = GradSampleModuleFastGradientClipping(
            model, batch_first=True, loss_reduction="sum", strict=False,
            max_grad_norm=cfg.max_grad_norm, use_ghost_clipping=True)
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
                batch = codes[poisson_indices(codes.shape[0], cfg.sample_rate, randomness)]
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
                    # the step is a statistic of the rows: private log only, not the error
                    private_logger.warning("dpsgd: the training loss became NaN or infinite "
                                           "by step %d", done)
                    raise GeneratorError(
                        "dpsgd: the training loss became NaN or infinite; no model is "
                        "returned (try a smaller 'lr' or 'max_grad_norm')")
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
