"""The network of the DP-SGD generator: a MADE-style autoregressive model over columns.

Every column is a categorical variable (numbers are binned from their public bounds by
the Discretiser). The input is the concatenated one-hot codes; masked linear layers
(Germain et al., "MADE", ICML 2015) make the logits of column j depend only on columns
before it, so one forward pass gives every conditional p(x_j | x_<j) and the row's
log-likelihood; sampling runs the columns in order. No BatchNorm, no buffers with data.

For DP-SGD the layers cooperate with opacus' fast-gradient-clipping hooks
(``GradSampleModuleFastGradientClipping``): :func:`masked_norm_sample`, registered as the
norm sampler of :class:`MaskedLinear`, returns each row's *exact* gradient norm of the
masked weight in O(batch x (in + out)) using the masks' degree structure, and keeps the
layer's activations and backprops so that :func:`book_keeping_grads` can form the sum of
clipped per-row gradients with one matrix product per layer (book-keeping, Bu et al.
2023) instead of a second backward pass. While ``book_keeping`` is on, the autograd
backward skips the (unclipped, unused) weight gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus.grad_sample.utils import register_grad_sampler, register_norm_sampler


class _Ctx(Protocol):
    """What :class:`_MaskedLinearFn` uses of autograd's context object (the C base
    provides ``saved_tensors`` and ``needs_input_grad``; ``book_keeping`` is ours)."""

    book_keeping: bool
    saved_tensors: tuple[torch.Tensor, ...]
    needs_input_grad: tuple[bool, ...]

    def save_for_backward(self, *tensors: torch.Tensor | None) -> None: ...


class _MaskedLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: _Ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        mask: torch.Tensor,
        book_keeping: bool,
    ) -> torch.Tensor:
        wm = weight * mask
        ctx.save_for_backward(x, wm, mask)
        ctx.book_keeping = book_keeping
        return F.linear(x, wm, bias)

    @staticmethod
    def backward(
        ctx: _Ctx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None, None]:
        x, wm, mask = ctx.saved_tensors
        grad_x = grad.matmul(wm.to(grad.dtype)) if ctx.needs_input_grad[0] else None
        if ctx.book_keeping:
            return grad_x, None, None, None, None
        grad_w = grad.t().matmul(x.to(grad.dtype)).to(wm.dtype) * mask
        return grad_x, grad_w, grad.sum(0).to(wm.dtype), None, None


class MaskedLinear(nn.Module):
    """``y = x (W * M)^T + b`` with ``M[o, i] = in_degree[i] <= threshold[o]``."""

    # buffers (register_buffer below)
    mask: torch.Tensor
    in_degree: torch.Tensor
    threshold: torch.Tensor

    def __init__(
        self, in_degree: torch.Tensor, threshold: torch.Tensor, *, generator: torch.Generator
    ) -> None:
        super().__init__()
        mask = (in_degree[None, :] <= threshold[:, None]).float()
        bound = mask.sum(1).clamp(min=1.0).rsqrt()[:, None]  # uniform(+-1/sqrt(fan-in))
        self.weight = nn.Parameter((torch.rand(mask.shape, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter(torch.zeros(len(threshold)))
        # Public structure (derived from the column order), not data: non-persistent.
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("in_degree", in_degree.long(), persistent=False)
        self.register_buffer("threshold", threshold.long(), persistent=False)
        self.book_keeping = False
        self.kept: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MaskedLinearFn.apply(x, self.weight, self.bias, self.mask, self.book_keeping)


@register_grad_sampler(MaskedLinear)
def masked_grad_sample(
    layer: MaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Materialised per-row gradients (opacus' plain hooks mode; tests compare norms)."""
    a, g = activations[0].float(), backprops.float()
    return {layer.weight: torch.einsum("ni,nj->nij", g, a) * layer.mask, layer.bias: g}


@register_norm_sampler(MaskedLinear)
def masked_norm_sample(
    layer: MaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Exact per-row gradient norms of a masked layer (2-D inputs).

    ||(g a^T) * M||^2 = sum_o g_o^2 sum_{i: deg_i <= thr_o} a_i^2: bucket a^2 by input
    degree, take cumulative sums, gather at each output's threshold.
    """
    a = activations[0].float()
    g = backprops.float()
    if layer.book_keeping:
        layer.kept = (a, g)
    buckets = int(max(layer.in_degree.max(), layer.threshold.max())) + 1
    a2 = torch.zeros(a.shape[0], buckets, device=a.device, dtype=a.dtype)
    a2.index_add_(1, layer.in_degree, a * a)
    reach = a2.cumsum(1).gather(1, layer.threshold.expand(a.shape[0], -1))
    g2 = g * g
    return {layer.weight: (g2 * reach).sum(1).clamp(min=0).sqrt(), layer.bias: g2.sum(1).sqrt()}


def book_keeping_grads(layers: Sequence[MaskedLinear], coef: torch.Tensor) -> None:
    """Set ``p.grad`` to the sum over rows of the clipped per-row gradients."""
    for layer in layers:
        if layer.kept is None:
            raise RuntimeError("book-keeping: a layer saw no backward pass")
        a, g = layer.kept
        cg = g * coef[:, None].to(g.dtype)
        layer.weight.grad = (cg.t() @ a) * layer.mask
        layer.bias.grad = cg.sum(0)
        layer.kept = None


class MADE(nn.Module):
    """Autoregressive model over categorical columns of the given sizes (model order)."""

    # buffers (register_buffer below)
    offsets: torch.Tensor
    index: torch.Tensor

    def __init__(
        self, sizes: Sequence[int], *, hidden: Sequence[int], generator: torch.Generator
    ) -> None:
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        d = len(self.sizes)
        deg_in = torch.repeat_interleave(torch.arange(1, d + 1), torch.tensor(self.sizes))
        layers: list[nn.Module] = []
        prev = deg_in
        for width in hidden:
            deg = torch.arange(width) % max(d - 1, 1) + 1
            layers += [MaskedLinear(prev, deg, generator=generator), nn.SiLU()]
            prev = deg
        self.trunk = nn.Sequential(*layers)
        self.head = MaskedLinear(prev, deg_in - 1, generator=generator)  # strict: deg < j
        self.direct = MaskedLinear(deg_in, deg_in - 1, generator=generator)
        offsets = torch.tensor([0] + self.sizes[:-1]).cumsum(0)
        width = max(self.sizes)
        total = sum(self.sizes)
        index = torch.full((d, width), total, dtype=torch.long)
        for j, k in enumerate(self.sizes):
            index[j, :k] = offsets[j] + torch.arange(k)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("index", index, persistent=False)

    @property
    def masked_layers(self) -> list[MaskedLinear]:
        return [m for m in self.modules() if isinstance(m, MaskedLinear)]

    def set_book_keeping(self, on: bool) -> None:
        for layer in self.masked_layers:
            layer.book_keeping = on
            layer.kept = None

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(codes.shape[0], sum(self.sizes), device=codes.device)
        return out.scatter_(1, codes + self.offsets, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)) + self.direct(x)

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each row (nats), shape (rows,)."""
        logits = self(self.one_hot(codes)).float()
        pad = torch.full((logits.shape[0], 1), -1e9, device=logits.device)
        per_column = torch.cat([logits, pad], 1)[:, self.index]
        logp = F.log_softmax(per_column, -1).gather(2, codes[:, :, None]).squeeze(2)
        return -logp.sum(1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, chunk: int = 65536) -> torch.Tensor:
        """``n`` rows of codes, columns in model order, shape (n, columns)."""
        device = self.offsets.device
        out = torch.empty(n, len(self.sizes), dtype=torch.long, device=device)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            x = torch.zeros(m, sum(self.sizes), device=device)
            for j, k in enumerate(self.sizes):
                lo = int(self.offsets[j])
                logits = self(x)[:, lo : lo + k].float()
                u = torch.rand(m, k, generator=generator, device=device).clamp_(1e-12, 1.0)
                code = torch.argmax(logits - torch.log(-torch.log(u)), dim=1)  # Gumbel-max
                x[torch.arange(m, device=device), lo + code] = 1.0
                out[start : start + m, j] = code
        return out
