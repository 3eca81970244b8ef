"""Noise for DP mechanisms: the only source of randomness a mechanism may use.

Two modes:

- :meth:`NoiseSource.secure` draws every noise value from the operating system's CSPRNG
  (``os.urandom``): uniforms are built from 53 random bits, Gaussians by Box–Muller and
  Gumbels as ``-log(-log U)``. Release runs use this mode.
- :meth:`NoiseSource.seeded` wraps ``numpy.random.Generator(PCG64(seed))`` so that tests
  are reproducible. It offers no privacy: a known seed reveals the noise.

Neither mode touches ``numpy``'s global random state.

Known limitation (as in Private-PGM and most libraries): the Gaussian is a continuous
one computed in floating point, not a discrete Gaussian, so the guarantee holds for the
idealised real-valued mechanism (cf. Mironov, CCS 2012, on floating-point attacks).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.spec import Privacy

logger = logging.getLogger(__name__)

_TWO_53 = float(2**53)
# A seeded noise source is refused by every entry point (run, flows, spec draft --dp)
# unless this environment variable is "1": the environment says it is a test.
TEST_NOISE_ENV = "SYNTHRELEASE_TEST_NOISE"
Size = int | tuple[int, ...]


def _secure_bits(count: int) -> np.ndarray:
    """``count`` independent 53-bit integers (as uint64) from the OS CSPRNG."""
    raw = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    return raw >> np.uint64(11)


def _count(size: Size) -> int:
    return int(np.prod(size)) if isinstance(size, tuple) else int(size)


class NoiseSource:
    """Noise for DP mechanisms. Build it with :meth:`secure` or :meth:`seeded`."""

    __slots__ = ("_mode", "_rng", "_seed_seq")

    def __init__(self, *, mode: str, seed: int | None = None) -> None:
        if mode == "secure":
            if seed is not None:
                raise GeneratorError("a secure noise source takes no seed")
            self._rng = None
            self._seed_seq = None
        elif mode == "seeded":
            if seed is None:
                raise GeneratorError("a seeded noise source needs a seed")
            self._rng = np.random.Generator(np.random.PCG64(seed))
            # Children of the same seed (spawn keys (0,), (1,), ...) feed post-processing;
            # they are independent of the noise stream above.
            self._seed_seq = np.random.SeedSequence(seed)
        else:
            raise GeneratorError(f"unknown noise mode {mode!r}; use 'secure' or 'seeded'")
        self._mode = mode

    # ------------------------------------------------------------------ constructors
    @classmethod
    def secure(cls) -> NoiseSource:
        """Noise from the OS CSPRNG (for releases)."""
        return cls(mode="secure")

    @classmethod
    def seeded(cls, seed: int) -> NoiseSource:
        """Reproducible pseudo-random noise (tests only: a known seed gives no privacy)."""
        return cls(mode="seeded", seed=int(seed))

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def is_secure(self) -> bool:
        return self._mode == "secure"

    def __repr__(self) -> str:
        return f"<NoiseSource {self._mode}>"

    # ------------------------------------------------------------------ draws
    def uniform(self, size: Size) -> np.ndarray:
        """Uniform doubles on [0, 1), 53 bits of randomness each."""
        if self._rng is not None:
            return self._rng.random(size)
        n = _count(size)
        return (_secure_bits(n).astype(np.float64) / _TWO_53).reshape(size)

    def _open_uniform(self, n: int) -> np.ndarray:
        """Uniforms strictly inside (0, 1): safe to take logarithms of."""
        return (_secure_bits(n).astype(np.float64) + 0.5) / _TWO_53

    def normal(self, scale: float, size: Size) -> np.ndarray:
        """Centred Gaussian noise with standard deviation ``scale``."""
        scale = float(scale)
        if not np.isfinite(scale) or scale < 0:
            raise GeneratorError("noise scale must be a finite, non-negative number")
        if self._rng is not None:
            return self._rng.normal(0.0, scale, size)
        n = _count(size)
        half = (n + 1) // 2
        u1 = self._open_uniform(half)
        u2 = self._open_uniform(half)
        radius = np.sqrt(-2.0 * np.log(u1))
        angle = 2.0 * np.pi * u2
        z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]
        return (scale * z).reshape(size)

    def gumbel(self, size: Size) -> np.ndarray:
        """Standard Gumbel noise (location 0, scale 1), for Gumbel-max selection."""
        if self._rng is not None:
            return self._rng.gumbel(0.0, 1.0, size)
        n = _count(size)
        return (-np.log(-np.log(self._open_uniform(n)))).reshape(size)

    def post_processing_rng(self) -> np.random.Generator:
        """A generator for randomness that spends no budget (sampling, shuffling).

        Secure mode seeds it from 256 bits of ``os.urandom``; seeded mode derives a fresh,
        reproducible child stream on each call.
        """
        if self._seed_seq is None:
            return np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(32), "little")))
        return np.random.Generator(np.random.PCG64(self._seed_seq.spawn(1)[0]))


def make_noise(privacy: Privacy) -> NoiseSource:
    """The noise source a release spec asks for (``privacy.noise`` / ``privacy.seed``)."""
    if privacy.noise == "secure":
        return NoiseSource.secure()
    if privacy.seed is None:  # the spec validator refuses this already
        raise GeneratorError("privacy.noise 'seeded' needs privacy.seed")
    logger.warning("seeded noise source in use: the output is NOT private (tests only)")
    return NoiseSource.seeded(privacy.seed)
