"""The whole release spec (:class:`ReleaseSpec`) and its cross-section checks."""

from __future__ import annotations

import hashlib
import json

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from synthrelease.spec.base import DOMAIN_ESTIMATING_GENERATORS, NAME_RE, _Model
from synthrelease.spec.schema import (
    BooleanColumn,
    CategoricalColumn,
    Column,
    NumericalColumn,
    Schema,
)
from synthrelease.spec.sections import (
    DownstreamModel,
    Gate,
    GeneratorSpec,
    Holdout,
    Privacy,
    Publication,
    SpecProvenance,
    Store,
    Workspace,
)
from synthrelease.spec.sources import Source


class ReleaseSpec(_Model):
    name: str
    source: Source
    schema_: Schema = Field(alias="schema")
    privacy: Privacy
    generator: GeneratorSpec
    holdout: Holdout = Holdout()
    synthetic_rows: int = Field(ge=1, le=100_000_000)
    expected_rows: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000_000,
        description="about how many rows the table holds, as the custodian declares it "
        "(public): what `synthrelease plan` predicts the release from before any row is "
        "read; never used by the release itself",
    )
    target: str | None = None
    gate: Gate = Gate()
    workspace: Workspace = Workspace()
    store: Store = Store()
    models: tuple[DownstreamModel, ...] = Field(
        default=(), description="models trained on the synthetic table only, published"
    )
    publish: Publication = Publication()
    provenance: SpecProvenance = Field(
        default=SpecProvenance(),
        description="where synthetic_rows and privacy.delta come from (declared, default, "
        "drafted: NOT DP, or dp), and the DP spend of drafted-under-DP domains",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _digest: str | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value) or ".." in value:
            raise ValueError(
                "must be 1-64 letters, digits, '_', '-' or '.', start with a letter or "
                "digit, and contain no '..' or path separator"
            )
        return value

    @model_validator(mode="after")
    def _target(self) -> ReleaseSpec:
        if self.target is not None and self.target not in self.schema_.columns:
            raise ValueError(f"target {self.target!r} is not a column of the schema")
        return self

    @model_validator(mode="after")
    def _domains(self) -> ReleaseSpec:
        """Undeclared bounds/categories need a DP budget share and a generator that
        estimates them; everything else must be declared (public metadata)."""
        open_ = [n for n, c in self.schema_.columns.items() if not getattr(c, "declared", True)]
        if not open_:
            return self
        where = ", ".join(f"schema.columns.{n}" for n in open_)
        if self.privacy.domain_share is None:
            raise ValueError(
                f"{where}: bounds/categories not declared; declare them, or set "
                "privacy.domain_share to estimate them with DP (charged to the budget)"
            )
        if self.generator.name not in DOMAIN_ESTIMATING_GENERATORS:
            raise ValueError(
                f"{where}: generator {self.generator.name!r} needs declared bounds/"
                f"categories; only {', '.join(DOMAIN_ESTIMATING_GENERATORS)} estimates them"
            )
        return self

    @model_validator(mode="after")
    def _models(self) -> ReleaseSpec:
        columns = self.schema_.columns
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("models: names must be distinct")
        for m in self.models:
            where = f"models.{m.name}"
            if m.target not in columns:
                raise ValueError(f"{where}: target {m.target!r} is not a column of the schema")
            col = columns[m.target]
            if m.kind == "classifier" and not isinstance(col, (CategoricalColumn, BooleanColumn)):
                raise ValueError(f"{where}: a classifier needs a categorical or boolean target")
            if m.kind == "regressor" and not isinstance(col, NumericalColumn):
                raise ValueError(f"{where}: a regressor needs a numerical target")
            if m.features is not None:
                unknown = [f for f in m.features if f not in columns]
                if unknown:
                    raise ValueError(f"{where}: features {unknown!r} are not columns of the schema")
                if (
                    m.target in m.features
                    or not m.features
                    or len(set(m.features)) != len(m.features)
                ):
                    raise ValueError(
                        f"{where}: features must be distinct, non-empty and "
                        "must not include the target"
                    )
            elif len(columns) < 2:
                raise ValueError(f"{where}: the schema has no column besides the target")
        return self

    @property
    def not_dp(self) -> dict[str, list[str]]:
        """Public values read from the rows WITHOUT DP (provenance 'drafted'):
        ``{"columns": [...], "values": [...]}``; empty lists when there are none."""
        return {
            "columns": [n for n, c in self.schema_.columns.items() if c.provenance == "drafted"],
            "values": [
                k
                for k in ("synthetic_rows", "delta", "expected_rows")
                if getattr(self.provenance, k) == "drafted"
                and (k != "expected_rows" or self.expected_rows is not None)
            ],
        }

    @property
    def columns(self) -> dict[str, Column]:
        return self.schema_.columns

    def digest(self) -> str:
        """sha256 of the canonical JSON form as written (paths unresolved, so the same
        spec hashes the same on every machine): identifies the spec in manifests."""
        if self._digest is not None:
            return self._digest
        payload = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()
