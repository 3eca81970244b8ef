"""DP generators behind one interface (:class:`~synthrelease.generators.base.DPGenerator`).

The registry is an explicit, read-only mapping. Heavy engines (jax/mbi, torch/opacus) are
imported inside the functions that use them, so importing this package stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from synthrelease.errors import GeneratorError
from synthrelease.generators.base import META_FILE, DPGenerator
from synthrelease.generators.mst import MSTGenerator
from synthrelease.spec import GENERATOR_NAMES, GeneratorSpec

GENERATORS: Mapping[str, type[DPGenerator]] = MappingProxyType({"mst": MSTGenerator})


def _generator_class(name: str) -> type[DPGenerator]:
    if name in GENERATORS:
        return GENERATORS[name]
    if name in GENERATOR_NAMES:
        raise GeneratorError(f"generator {name!r} is not available yet")
    raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")


def build_generator(
    spec: GeneratorSpec, columns: Mapping[str, Any], *, epsilon: float, delta: float
) -> DPGenerator:
    """An unfitted generator for a spec's ``generator`` section (params validated)."""
    cls = _generator_class(spec.name)
    return cls(columns, epsilon=epsilon, delta=delta, params=spec.params)


def load_generator(path: Path | str) -> DPGenerator:
    """Load a saved generator of any registered kind (reads no data)."""
    path = Path(path)
    try:
        name = json.loads((path / META_FILE).read_text()).get("generator")
    except (OSError, ValueError, AttributeError) as exc:
        raise GeneratorError(f"cannot read a generator from {path}: {type(exc).__name__}") from None
    return _generator_class(str(name)).load(path)


__all__ = ["GENERATORS", "DPGenerator", "MSTGenerator", "build_generator", "load_generator"]
