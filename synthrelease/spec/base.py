"""What every spec section shares: strict, frozen models and the name rules."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GENERATOR_NAMES = ("mst", "aim", "dpsgd")
DOMAIN_ESTIMATING_GENERATORS = ("dpsgd",)  # may leave bounds/categories to a DP estimate


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
