"""The public schema: one typed column model per column, with its declared domain."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from synthrelease.spec.base import _Model

DOMAIN_PROVENANCES = ("declared", "drafted", "dp")
OUT_OF_DOMAIN_RULES = ("clip", "drop")
REFUSE_REMOVED = (
    "'refuse' is no longer an out_of_domain rule: stopping the run when a value lies "
    "outside the domain is a function of the rows (one bit per run, free of charge). "
    "Use 'clip' (numerical/datetime: the value moves to the nearest bound) or 'drop' (the "
    "row is left out), or declare an 'other' bucket (categorical: unknown values map to "
    "it); leave the key out for the default"
)


class _Column(_Model):
    nullable: bool = False
    out_of_domain: Literal["clip", "drop"] | None = Field(
        default=None,
        description="what happens, row by row, to a value outside the declared domain: "
        "'clip' it to the bounds (numbers, dates) or 'drop' its row; default: clip for "
        "numerical/datetime; for categorical/boolean the declared 'other' bucket when "
        "there is one, else drop. Never a run-level decision (no 'refuse')",
    )
    provenance: Literal["declared", "drafted", "dp"] = Field(
        default="declared",
        description="where the column's domain (bounds / category set) comes from: "
        "'declared' by the data custodian (default); 'drafted': read from the rows by "
        "`spec draft`, NOT differentially private (said so in the release); 'dp': a DP "
        "estimate charged to the budget (`spec draft --dp`, or left undeclared for the "
        "generator to estimate: then 'dp' is the default)",
    )

    @field_validator("out_of_domain", mode="before")
    @classmethod
    def _no_refuse(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "refuse":
            raise ValueError(REFUSE_REMOVED)
        return value

    @classmethod
    def _undeclared_raw(cls, data: dict) -> bool:
        """Whether raw column data leaves the domain to a DP estimate (per subclass)."""
        return False

    @model_validator(mode="before")
    @classmethod
    def _default_provenance(cls, data: Any) -> Any:
        """An undeclared domain is estimated with DP: its provenance is 'dp'."""
        if isinstance(data, dict) and cls._undeclared_raw(data):
            given = data.get("provenance")
            if given is None:
                data = {**data, "provenance": "dp"}
            elif given != "dp":
                raise ValueError(
                    f"provenance {given!r} needs a declared domain (bounds / categories); a "
                    "domain left out is estimated with DP: provenance 'dp'"
                )
        return data

    @model_validator(mode="after")
    def _policy_fits(self) -> _Column:
        if self.out_of_domain == "clip" and getattr(self, "type", None) in (
            "categorical",
            "boolean",
        ):
            raise ValueError(
                "out_of_domain 'clip' applies to numerical and datetime columns only "
                "(use 'drop', or an 'other' bucket)"
            )
        return self

    @property
    def policy(self) -> str:
        """The effective out-of-domain rule of this column, applied row by row:
        ``clip``, ``drop`` or ``other`` (map to the column's 'other' bucket)."""
        if self.out_of_domain is not None:
            return self.out_of_domain
        kind = getattr(self, "type", None)
        if kind in ("numerical", "datetime"):
            return "clip"
        if kind == "categorical" and (
            getattr(self, "other", None) is not None or not getattr(self, "declared", True)
        ):
            return "other"  # an undeclared set gets an 'other' bucket from its DP estimate
        return "drop"


class NumericalColumn(_Column):
    type: Literal["numerical"]
    # A bound left out is *undeclared*: allowed only with privacy.domain_share, and then
    # estimated with DP by a generator that can (dpsgd); see ReleaseSpec._domains.
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    bins: int | None = Field(default=None, ge=2, le=1024)
    edges: tuple[float, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=1023,
        description="interior bin edges (public), strictly increasing and strictly "
        "between lower and upper: bins [lower, e1), [e1, e2), ..., [ek, upper]; "
        "default: 'bins' uniform bins from the bounds",
    )

    @model_validator(mode="after")
    def _bounds(self) -> NumericalColumn:
        lower, upper = self.lower, self.upper
        given = [b for b in (lower, upper) if b is not None]
        if not all(math.isfinite(b) for b in given):
            raise ValueError("lower and upper must be finite numbers")
        if lower is not None and upper is not None and lower >= upper:
            raise ValueError("lower must be smaller than upper")
        return self

    @model_validator(mode="after")
    def _edges(self) -> NumericalColumn:
        if self.edges is None:
            return self
        lower, upper = self.lower, self.upper
        if lower is None or upper is None:  # not self.declared
            raise ValueError("edges need declared lower and upper bounds")
        e = self.edges
        if not all(math.isfinite(x) for x in e) or any(a >= b for a, b in zip(e, e[1:])):
            raise ValueError("edges must be finite and strictly increasing")
        if e[0] <= lower or e[-1] >= upper:
            raise ValueError("edges must lie strictly between lower and upper")
        if self.bins is not None and self.bins != len(e) + 1:
            raise ValueError("bins must equal the number of edges plus one (or be left out)")
        return self

    @property
    def declared(self) -> bool:
        return self.lower is not None and self.upper is not None

    @classmethod
    def _undeclared_raw(cls, data: dict) -> bool:
        return data.get("lower") is None or data.get("upper") is None


class CategoricalColumn(_Column):
    type: Literal["categorical"]
    # Left out (None): *undeclared*, allowed only with privacy.domain_share (DP category
    # discovery by a generator that can: dpsgd). An empty list is a declared empty set.
    categories: tuple[str, ...] | None = None
    other: str | None = Field(
        default=None,
        description="label of the bucket that values outside 'categories' map to; "
        "without it the rows holding such values are dropped (row by row)",
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        return value

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalColumn:
        if self.categories is None:
            return self
        if not self.categories and self.other is None:
            raise ValueError("declare at least one category, or an 'other' bucket")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be distinct")
        if self.other is not None and self.other in self.categories:
            raise ValueError("'other' must not be one of the categories")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        """Every value the column can take in a release (nulls aside)."""
        return (self.categories or ()) + ((self.other,) if self.other is not None else ())

    @property
    def declared(self) -> bool:
        return self.categories is not None

    @classmethod
    def _undeclared_raw(cls, data: dict) -> bool:
        return data.get("categories") is None


class BooleanColumn(_Column):
    type: Literal["boolean"]


class DatetimeColumn(_Column):
    type: Literal["datetime"]
    lower: dt.datetime
    upper: dt.datetime
    bins: int | None = Field(default=None, ge=2, le=1024)

    @model_validator(mode="after")
    def _bounds(self) -> DatetimeColumn:
        if self.lower >= self.upper:
            raise ValueError("lower must be earlier than upper")
        return self


Column = Annotated[
    NumericalColumn | CategoricalColumn | BooleanColumn | DatetimeColumn,
    Field(discriminator="type"),
]


class Schema(_Model):
    columns: dict[str, Column] = Field(min_length=1)
    sdv_metadata: Path | None = Field(
        default=None, description="SDV metadata JSON giving the column types (optional)"
    )
