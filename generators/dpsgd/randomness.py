"""The randomness of a DP-SGD step: Poisson membership on a public rate grid, and the
Gaussian noise opacus adds, both drawn by :class:`StepRandomness`.

Noise source: with a secure NoiseSource, every torch generator below is re-keyed from
``os.urandom`` before every step (CPU: the whole MT19937 state, 19968 bits; CUDA: the
Philox key and offset, 125 bits, two generators per stream), so each step's sampling and
each step's Gaussian noise rest on at least 128 fresh bits of OS entropy; with a seeded
NoiseSource the same generators are seeded once from it (reproducible, not private).

Poisson sampling: every row is in the batch independently with probability
``sample_rate`` (a float64 uniform per row, on the device, compared with
``sample_rate``, which must lie on the public grid of :func:`public_sample_rate`,
multiples of 2^-40, so that the accounted and the used rate are the same number; no
per-row DataLoader). Gaussian noise: four draws summed and halved, as opacus'
``secure_mode`` does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from synthrelease.errors import GeneratorError
from synthrelease.generators.noise import NoiseSource

SAMPLE_RATE_GRID_BITS = 40  # Poisson sample rates are multiples of 2^-40


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
        raise GeneratorError(
            "dpsgd: the Poisson sample rate is below 2^-40; use a larger 'batch_size'"
        )
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


def rekey(generator: torch.Generator) -> None:
    """Replace ``generator``'s whole key/state with fresh bits from ``os.urandom``."""
    state = generator.get_state()
    if generator.device.type == "cpu":
        buf = state.numpy().copy()
        if buf.size != _CPU_STATE_BYTES:
            raise GeneratorError("dpsgd: unsupported torch CPU generator state layout")
        words = np.frombuffer(os.urandom(4 * _MT_WORDS), dtype="<u4").astype("<u8")
        buf[_MT_AT : _MT_AT + 8 * _MT_WORDS] = words.view(np.uint8)
        buf[8:24] = np.frombuffer(np.array([1, 1], "<i4").tobytes() + bytes(8), np.uint8)
        buf[_NORMAL_VALID_AT : _NORMAL_VALID_AT + 4] = 0  # no cached Box-Muller sample
        buf[_FLOAT_NORMAL_VALID_AT] = 0
        generator.set_state(torch.from_numpy(buf))
        if not np.array_equal(
            generator.get_state().numpy()[8 : _MT_AT + 8 * _MT_WORDS],
            buf[8 : _MT_AT + 8 * _MT_WORDS],
        ):
            raise GeneratorError("dpsgd: unsupported torch CPU generator state layout")
    else:  # Philox: 64-bit key and a 64-bit offset that must be a multiple of 4
        raw = os.urandom(16)
        offset = int.from_bytes(raw[8:], "little") & (2**63 - 4)
        generator.set_state(
            torch.frombuffer(bytearray(raw[:8] + offset.to_bytes(8, "little")), dtype=torch.uint8)
        )


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
    def from_noise(cls, noise: NoiseSource, device: torch.device) -> StepRandomness:
        """Secure noise: OS entropy at every step; seeded noise: seeds drawn from it."""
        if noise.is_secure:
            return cls(device, seeds=None)
        k = 2 * cls.per_stream(device)
        return cls(device, seeds=[_generator_seed(noise) for _ in range(k)])

    def begin_step(self) -> None:
        """Secure mode: fresh OS entropy for every generator (call before each step)."""
        if self.secure:
            for g in (*self._sample, *self._noise):
                rekey(g)

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
            out += torch.normal(
                0.0,
                std,
                size=tuple(reference.shape),
                device=reference.device,
                dtype=reference.dtype,
                generator=self._noise[i % len(self._noise)],
            )
        return out / 2


def poisson_indices(rows: int, rate: float, randomness: StepRandomness) -> torch.Tensor:
    """Indices of a Poisson sample: each row kept independently with prob. ``rate``
    (float64 comparison; ``rate`` on the public grid gives probability exactly ``rate``)."""
    keep = randomness.uniforms(rows) < rate
    return keep.nonzero().squeeze(1)
