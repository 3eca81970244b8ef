"""DP generators behind one interface (:class:`~synthrelease.generators.base.DPGenerator`).

The registry is an explicit, read-only mapping. Heavy engines (jax/mbi, torch/opacus) are
imported inside the functions that use them, so importing this package stays fast.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from synthrelease.errors import GeneratorError
from synthrelease.generators.base import META_FILE, DPGenerator
from synthrelease.generators.marginal.aim import AIMGenerator
from synthrelease.generators.marginal.mst import MSTGenerator
from synthrelease.spec import GENERATOR_NAMES, GeneratorSpec

GENERATORS: Mapping[str, type[DPGenerator]] = MappingProxyType(
    {"mst": MSTGenerator, "aim": AIMGenerator}
)
# Generators on heavy engines (torch/opacus), imported on first use: "module:Class".
LAZY_GENERATORS: Mapping[str, str] = MappingProxyType(
    {"dpsgd": "synthrelease.generators.dpsgd.generator:DPSGDGenerator"}
)


def _generator_class(name: str) -> type[DPGenerator]:
    if name in GENERATORS:
        return GENERATORS[name]
    if name in LAZY_GENERATORS:
        module, _, attr = LAZY_GENERATORS[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    if name in GENERATOR_NAMES:
        raise GeneratorError(f"generator {name!r} is not available yet")
    known = ", ".join([*GENERATORS, *LAZY_GENERATORS])
    raise GeneratorError(f"unknown generator {name!r}; known: {known}")


def build_generator(
    spec: GeneratorSpec,
    columns: Mapping[str, Any],
    *,
    epsilon: float,
    delta: float,
    domain_share: float | None = None,
    target: str | None = None,
) -> DPGenerator:
    """An unfitted generator for a spec's ``generator`` section (params validated).

    ``domain_share`` (``privacy.domain_share``) reaches generators that estimate
    undeclared domains with DP (class attribute ``estimates_domains``); ``target`` (the
    spec's ``target``) reaches generators that use one (class attribute ``uses_target``:
    AIM's default workload), unless their params name one already.
    """
    cls = _generator_class(spec.name)
    extra: dict[str, Any] = {}
    if target is not None and getattr(cls, "uses_target", False):
        extra["target"] = target
    if domain_share and getattr(cls, "estimates_domains", False):
        extra["domain_share"] = domain_share
    return cls(columns, epsilon=epsilon, delta=delta, params=spec.params, **extra)


# Parameters that make a fit learn (part of) its domain from the rows: the privacy
# audit fits on the release's resolved domain instead, so it audits the mechanisms after.
LEARNED_DOMAIN = ("quantile_edges", "quantile_share")


def audit_spec(spec: GeneratorSpec) -> GeneratorSpec:
    """The generator section of the privacy audit's fit: the release's parameters without
    those in :data:`LEARNED_DOMAIN`, with the class's ``audit_params`` (post-processing
    only: they change nothing the mechanisms measure) set."""
    params = {k: v for k, v in spec.params.items() if k not in LEARNED_DOMAIN}
    params.update(_generator_class(spec.name).audit_params)
    return spec.model_copy(update={"params": params})


def load_generator(path: Path | str) -> DPGenerator:
    """Load a saved generator of any registered kind (reads no data)."""
    path = Path(path)
    try:
        name = json.loads((path / META_FILE).read_text()).get("generator")
    except (OSError, ValueError, AttributeError) as exc:
        raise GeneratorError(f"cannot read a generator from {path}: {type(exc).__name__}") from None
    return _generator_class(str(name)).load(path)


__all__ = [
    "GENERATORS",
    "LEARNED_DOMAIN",
    "LAZY_GENERATORS",
    "AIMGenerator",
    "DPGenerator",
    "audit_spec",
    "MSTGenerator",
    "build_generator",
    "load_generator",
]
