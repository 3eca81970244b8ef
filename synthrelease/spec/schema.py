"""The public schema: one typed column model per column, with its declared domain."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from synthrelease.spec.base import _Model


class _Column(_Model):
    nullable: bool = False
    out_of_domain: Literal["refuse", "clip", "drop"] | None = Field(
        default=None,
        description="what to do with a value outside the declared domain: 'refuse' the "
        "run, 'clip' it to the bounds (numbers, dates) or 'drop' its row; default: clip "
        "for numerical/datetime, refuse for categorical/boolean",
    )

    @model_validator(mode="after")
    def _policy_fits(self) -> "_Column":
        if self.out_of_domain == "clip" and getattr(self, "type", None) in ("categorical", "boolean"):
            raise ValueError(
                "out_of_domain 'clip' applies to numerical and datetime columns only "
                "(use 'refuse', 'drop', or an 'other' bucket)"
            )
        return self

    @property
    def policy(self) -> str:
        """The effective out-of-domain rule of this column."""
        if self.out_of_domain is not None:
            return self.out_of_domain
        return "clip" if getattr(self, "type", None) in ("numerical", "datetime") else "refuse"


class NumericalColumn(_Column):
    type: Literal["numerical"]
    # A bound left out is *undeclared*: allowed only with privacy.domain_share, and then
    # estimated with DP by a generator that can (dpsgd); see ReleaseSpec._domains.
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    bins: int | None = Field(default=None, ge=2, le=1024)
    edges: tuple[float, ...] | None = Field(
        default=None, min_length=1, max_length=1023,
        description="interior bin edges (public), strictly increasing and strictly "
        "between lower and upper: bins [lower, e1), [e1, e2), ..., [ek, upper]; "
        "default: 'bins' uniform bins from the bounds",
    )

    @model_validator(mode="after")
    def _bounds(self) -> "NumericalColumn":
        given = [b for b in (self.lower, self.upper) if b is not None]
        if not all(math.isfinite(b) for b in given):
            raise ValueError("lower and upper must be finite numbers")
        if len(given) == 2 and self.lower >= self.upper:
            raise ValueError("lower must be smaller than upper")
        return self

    @model_validator(mode="after")
    def _edges(self) -> "NumericalColumn":
        if self.edges is None:
            return self
        if not self.declared:
            raise ValueError("edges need declared lower and upper bounds")
        e = self.edges
        if not all(math.isfinite(x) for x in e) or any(a >= b for a, b in zip(e, e[1:])):
            raise ValueError("edges must be finite and strictly increasing")
        if e[0] <= self.lower or e[-1] >= self.upper:
            raise ValueError("edges must lie strictly between lower and upper")
        if self.bins is not None and self.bins != len(e) + 1:
            raise ValueError("bins must equal the number of edges plus one (or be left out)")
        return self

    @property
    def declared(self) -> bool:
        return self.lower is not None and self.upper is not None


class CategoricalColumn(_Column):
    type: Literal["categorical"]
    # Left out (None): *undeclared*, allowed only with privacy.domain_share (DP category
    # discovery by a generator that can: dpsgd). An empty list is a declared empty set.
    categories: tuple[str, ...] | None = None
    other: str | None = Field(
        default=None,
        description="label of the bucket that values outside 'categories' map to; "
        "without it such values are refused",
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        return value

    @model_validator(mode="after")
    def _distinct(self) -> "CategoricalColumn":
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


class BooleanColumn(_Column):
    type: Literal["boolean"]


class DatetimeColumn(_Column):
    type: Literal["datetime"]
    lower: dt.datetime
    upper: dt.datetime
    bins: int | None = Field(default=None, ge=2, le=1024)

    @model_validator(mode="after")
    def _bounds(self) -> "DatetimeColumn":
        if self.lower >= self.upper:
            raise ValueError("lower must be earlier than upper")
        return self


Column = Annotated[
    Union[NumericalColumn, CategoricalColumn, BooleanColumn, DatetimeColumn],
    Field(discriminator="type"),
]


class Schema(_Model):
    columns: dict[str, Column] = Field(min_length=1)
    sdv_metadata: Path | None = Field(
        default=None, description="SDV metadata JSON giving the column types (optional)"
    )


