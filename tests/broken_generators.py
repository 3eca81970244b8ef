"""Deliberately broken variants of the generators, for the privacy audit's power tests
and ``bench/bench_audit.py`` (issue 15): each is a bug the audit must catch.

- :class:`ScaledNoise`: every Gaussian draw of a fit scaled by ``factor`` (noise 100x
  too small with 0.01): the budget lines still claim the full noise;
- :class:`UnnoisedDraw`: the ``index``-th Gaussian draw of a fit replaced by zeros.
  MST and AIM measure the 1-way marginals first, one draw per column in order, so
  index ``j`` measures column ``j``'s 1-way marginal without noise;
- :func:`no_clipping`: DP-SGD's per-row clip coefficients all 1 (gradients unclipped,
  noise still calibrated to the clip norm);
- :func:`release_with_scaled_noise`: a release spec whose every fit (the release's and
  its audit's) draws Gaussians 100x too small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping

from synthrelease.generators.noise import NoiseSource, Size


class ScaledNoise(NoiseSource):
    __slots__ = ("factor",)

    def __init__(self, seed: int, *, factor: float) -> None:
        super().__init__(mode="seeded", seed=seed)
        self.factor = factor

    def normal(self, scale: float, size: Size) -> np.ndarray:
        return super().normal(scale * self.factor, size)


class UnnoisedDraw(NoiseSource):
    __slots__ = ("index", "calls")

    def __init__(self, seed: int, *, index: int) -> None:
        super().__init__(mode="seeded", seed=seed)
        self.index = index
        self.calls = 0

    def normal(self, scale: float, size: Size) -> np.ndarray:
        draw = super().normal(scale, size)
        self.calls += 1
        return np.zeros_like(draw) if self.calls - 1 == self.index else draw


@contextmanager
def no_clipping() -> Iterator[None]:
    """DP-SGD without clipping while the block runs (opacus' clip coefficients all 1)."""
    original = GradSampleModuleFastGradientClipping.get_clipping_coef

    def unclipped(self: GradSampleModuleFastGradientClipping) -> torch.Tensor:
        return torch.ones_like(original(self))

    GradSampleModuleFastGradientClipping.get_clipping_coef = unclipped  # type: ignore[method-assign]
    try:
        yield
    finally:
        GradSampleModuleFastGradientClipping.get_clipping_coef = original  # type: ignore[method-assign]


def release_with_scaled_noise(spec_factory: Any, monkeypatch: Any, **overrides: Any) -> Path:
    """A small seeded MST spec at epsilon 1 (``spec_factory`` of tests/conftest.py, with
    ``overrides``), with every Gaussian draw of the process scaled by 0.01 while the
    budget lines claim the full noise: the bug in the code that runs, in the release's
    fit and in its audit's."""
    normal = NoiseSource.normal
    monkeypatch.setattr(
        NoiseSource, "normal", lambda self, scale, size: normal(self, scale * 0.01, size)
    )
    return spec_factory(
        privacy={
            "epsilon": 1.0,
            "delta": 1e-6,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
            "noise": "seeded",
            "seed": 7,
        },
        generator={"name": "mst", "params": {"bins": 32}},
        **overrides,
    )
