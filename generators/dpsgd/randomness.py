"""The randomness of a DP-SGD step: a Poisson sample of the rows on a public rate
grid, and the Gaussian noise opacus adds, both drawn by :class:`StepRandomness`.

Noise source: with a secure NoiseSource, every generator below is re-keyed from
``os.urandom`` before every step (the sampling stream: a numpy Philox generator, a
128-bit key; the Gaussian noise: torch generators, on CPU the whole MT19937 state, 19968
bits, on CUDA two Philox keys and offsets, 125 bits each), so each step's sample and
each step's noise rest on at least 128 fresh bits of OS entropy; with a seeded
NoiseSource the same generators are seeded once from it (reproducible, not private).

Poisson sampling (:func:`poisson_indices`), O(batch) a step, not O(rows): the batch size
``B ~ Binomial(rows, q)``, then ``B`` distinct rows uniformly without replacement. That
is the law of independent per-row coins of probability ``q``: a set ``S`` of rows comes
out of the coins with probability ``q^|S| (1-q)^(rows-|S|)``, which depends on ``|S|``
only, so given its size the sample is uniform among the sets of that size, and its size
is ``Binomial(rows, q)``; drawing the size, then a uniform set of that size, gives every
set the same probability. ``q`` lies on the public grid of :func:`public_sample_rate`
(multiples of 2^-40), so the accounted and the used rate are the same float64 number.
The rows are exact (numpy's ``choice`` without replacement: Floyd's algorithm, or a
partial Fisher-Yates shuffle past ``rows / 20``, both on unbiased bounded integers); the
size is numpy's binomial draw (inversion for ``rows * q <= 30``, else BTPE rejection),
exact up to float64 rounding in its arithmetic (relative errors of order 1e-15 in the
probabilities: the per-row float64 coins it replaces were exact, at a uniform per row
per step). Gaussian noise: four draws summed and halved, as opacus' ``secure_mode`` does.
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
    """The randomness of DP-SGD steps: the Poisson sample and the Gaussian noise.

    Sampling: one numpy Philox generator on the CPU (the rows are drawn as indices
    there, whatever the device). Noise: ``per_stream(device)`` torch generators (one on
    CPU, two on CUDA) whose draws are combined, so that predicting a draw needs every
    generator's key. Secure mode (``seeds=None``): :meth:`begin_step` re-keys every
    generator from ``os.urandom`` (Philox: a 128-bit key; torch CPU: 19968 bits; CUDA:
    125 bits each). Seeded mode: ``2 * per_stream(device)`` seeds, the first half for
    the sampling stream, the rest for the noise; seeded once and never re-keyed
    (reproducible; no privacy).
    """

    def __init__(self, device: torch.device, *, seeds: Sequence[int] | None) -> None:
        k = self.per_stream(device)
        self.secure = seeds is None
        self.device = device
        self._noise = [torch.Generator(device) for _ in range(k)]
        self._sample = np.random.Generator(np.random.Philox(0))
        if seeds is not None:
            if len(seeds) != 2 * k:
                raise GeneratorError("dpsgd: wrong number of generator seeds")
            entropy = [int(seed) for seed in seeds[:k]]
            self._sample = np.random.Generator(np.random.Philox(np.random.SeedSequence(entropy)))
            for g, seed in zip(self._noise, seeds[k:]):
                g.manual_seed(int(seed))
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
            key = int.from_bytes(os.urandom(16), "little")
            self._sample = np.random.Generator(np.random.Philox(key=key))
            for g in self._noise:
                rekey(g)

    @property
    def sampling(self) -> np.random.Generator:
        """This step's sampling generator (secure mode: a new key every step)."""
        return self._sample

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


def poisson_indices(rows: int, rate: float, randomness: StepRandomness) -> np.ndarray:
    """A Poisson sample of ``range(rows)`` at ``rate``, as sorted int64 indices: the size
    ``B ~ Binomial(rows, rate)``, then ``B`` distinct rows uniformly (the law of
    independent per-row coins; see the module docstring). Time and memory O(B) while
    ``B <= rows / 20`` (numpy's Floyd sampler), O(rows) = O(20 B) beyond."""
    rng = randomness.sampling
    size = int(rng.binomial(rows, rate)) if rows else 0
    index = rng.choice(rows, size=size, replace=False, shuffle=False) if size else np.empty(0)
    return np.sort(index.astype(np.int64, copy=False))
