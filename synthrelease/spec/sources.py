"""Where a release reads its sensitive table from (public: paths and names only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from synthrelease.spec.base import _Model


class CsvSource(_Model):
    kind: Literal["csv"]
    path: Path
    separator: str = ","
    encoding: str = "utf-8"


class ParquetSource(_Model):
    kind: Literal["parquet"]
    path: Path


class SqlSource(_Model):
    """SQL through SQLAlchemy. The URL (with its credentials) comes from the environment."""

    kind: Literal["sql"]
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


Source = Annotated[CsvSource | ParquetSource | SqlSource, Field(discriminator="kind")]
