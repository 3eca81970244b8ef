"""DP-SGD on opacus: a masked autoregressive model (MADE) trained with clipped, noised
per-row gradients under Poisson sampling. Imported on first use (torch is heavy): the
registry names ``synthrelease.generators.dpsgd.generator:DPSGDGenerator``."""
