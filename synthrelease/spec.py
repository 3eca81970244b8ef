"""The release spec: everything public about one release, typed and validated.

A spec is loaded once at the edge (CLI, flow) with :func:`load_spec` and passed in.
Everything in it is *public metadata*: the schema's bounds and category sets become part
of the release, so they must come from domain knowledge, never silently from the rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
    PrivateAttr,
)

from synthrelease.errors import SpecError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GENERATOR_NAMES = ("mst", "aim", "dpsgd")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sources
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
    def _one_of(self) -> "SqlSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


Source = Annotated[Union[CsvSource, ParquetSource, SqlSource], Field(discriminator="kind")]


# --------------------------------------------------------------------------- schema
class _Column(_Model):
    nullable: bool = False


class NumericalColumn(_Column):
    type: Literal["numerical"]
    lower: float
    upper: float
    integer: bool = False
    bins: int | None = Field(default=None, ge=2, le=1024)

    @model_validator(mode="after")
    def _bounds(self) -> "NumericalColumn":
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError("lower and upper must be finite numbers")
        if self.lower >= self.upper:
            raise ValueError("lower must be smaller than upper")
        return self


class CategoricalColumn(_Column):
    type: Literal["categorical"]
    categories: tuple[str, ...] = ()
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
        return self.categories + ((self.other,) if self.other is not None else ())


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


# --------------------------------------------------------------------------- privacy
class Budget(_Model):
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(ge=0, lt=1, allow_inf_nan=False)


class Privacy(_Model):
    epsilon: float = Field(gt=0, le=100, allow_inf_nan=False)
    delta: float = Field(gt=0, lt=1e-2, allow_inf_nan=False)
    budget: Budget
    noise: Literal["secure", "seeded"] = Field(
        default="secure",
        description="'secure' draws noise from the OS CSPRNG; 'seeded' is for tests only",
    )
    seed: int | None = None

    @model_validator(mode="after")
    def _fits(self) -> "Privacy":
        if self.epsilon > self.budget.epsilon:
            raise ValueError("epsilon is larger than the table's lifetime budget epsilon")
        if self.delta > self.budget.delta:
            raise ValueError("delta is larger than the table's lifetime budget delta")
        if self.noise == "seeded" and self.seed is None:
            raise ValueError("noise 'seeded' needs a 'seed'")
        if self.noise == "secure" and self.seed is not None:
            raise ValueError("'seed' is only allowed with noise 'seeded'")
        return self


class GeneratorSpec(_Model):
    name: Literal["mst", "aim", "dpsgd"]
    params: dict[str, Any] = Field(default_factory=dict)


class Holdout(_Model):
    fraction: float | None = Field(default=0.2, gt=0, lt=1)
    source: Source | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Holdout":
        if self.source is not None and "fraction" in self.model_fields_set:
            raise ValueError("give either 'fraction' or 'source', not both")
        return self


class Gate(_Model):
    """Thresholds of the release gate. Every check fails closed."""

    max_tvd_1way: float = Field(default=0.1, gt=0, le=1)
    max_tvd_2way: float = Field(default=0.2, gt=0, le=1)
    max_exact_copy_excess: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="share of synthetic rows copying a training row, minus the share "
        "copying a holdout row (same-size samples); a generator that copies its "
        "training rows scores about holdout/train size (0.25 at an 80/20 split)",
    )
    expectations: bool = Field(default=True, description="the GX suite must pass")


class Workspace(_Model):
    """The private workspace: the only place originals and fitted models may live."""

    path: Path = Path(".synthrelease/workspace")
    ledger_url_env: str | None = Field(
        default=None,
        description="environment variable holding a SQLAlchemy URL for the ledger; "
        "default: SQLite file in the workspace",
    )


class Store(_Model):
    uri: str = "releases"


class ReleaseSpec(_Model):
    name: str
    source: Source
    schema_: Schema = Field(alias="schema")
    privacy: Privacy
    generator: GeneratorSpec
    holdout: Holdout = Holdout()
    synthetic_rows: int = Field(ge=1, le=100_000_000)
    target: str | None = None
    gate: Gate = Gate()
    workspace: Workspace = Workspace()
    store: Store = Store()

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
    def _target(self) -> "ReleaseSpec":
        if self.target is not None and self.target not in self.schema_.columns:
            raise ValueError(f"target {self.target!r} is not a column of the schema")
        return self

    @property
    def columns(self) -> dict[str, Any]:
        return self.schema_.columns

    def digest(self) -> str:
        """sha256 of the canonical JSON form as written (paths unresolved, so the same
        spec hashes the same on every machine): identifies the spec in manifests."""
        if self._digest is not None:
            return self._digest
        payload = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------- loading
_SDV_TYPES = {
    "numerical": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
}


def _merge_sdv_metadata(raw: dict[str, Any], base: Path) -> None:
    """Fill each column's ``type`` from an SDV metadata JSON (types only, never domains)."""
    schema = raw.get("schema")
    if not isinstance(schema, dict) or not schema.get("sdv_metadata"):
        return
    path = Path(schema["sdv_metadata"])
    path = path if path.is_absolute() else base / path
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"schema.sdv_metadata: cannot read {path}: {type(exc).__name__}") from None
    tables = meta.get("tables")
    table = next(iter(tables.values())) if isinstance(tables, dict) and tables else meta
    sdv_columns = table.get("columns", {}) if isinstance(table, dict) else {}
    columns = schema.setdefault("columns", {})
    for col, info in sdv_columns.items():
        sdtype = info.get("sdtype") if isinstance(info, dict) else None
        if sdtype not in _SDV_TYPES:
            raise SpecError(
                f"schema.sdv_metadata: column {col!r} has sdtype {sdtype!r}; supported: "
                + ", ".join(_SDV_TYPES)
            )
        entry = columns.setdefault(col, {})
        if not isinstance(entry, dict):
            raise SpecError(f"schema.columns.{col}: must be a mapping")
        entry.setdefault("type", _SDV_TYPES[sdtype])


def _resolve_paths(spec: ReleaseSpec, base: Path) -> ReleaseSpec:
    """Make relative paths relative to the spec file's folder."""

    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    update: dict[str, Any] = {}
    if isinstance(spec.source, (CsvSource, ParquetSource)):
        update["source"] = spec.source.model_copy(update={"path": fix(spec.source.path)})
    hs = spec.holdout.source
    if isinstance(hs, (CsvSource, ParquetSource)):
        update["holdout"] = spec.holdout.model_copy(
            update={"source": hs.model_copy(update={"path": fix(hs.path)})}
        )
    update["workspace"] = spec.workspace.model_copy(update={"path": fix(spec.workspace.path)})
    if "://" not in spec.store.uri and not Path(spec.store.uri).is_absolute():
        update["store"] = Store(uri=str((base / spec.store.uri).resolve()))
    resolved = spec.model_copy(update=update)
    resolved._digest = spec.digest()
    return resolved


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, naming the key; never the offending value."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        loc = loc.replace("schema_", "schema")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{prefix}{loc}: {msg}")
    return "; ".join(lines)


def parse_spec(raw: Any, *, base: Path = Path("."), origin: str = "spec") -> ReleaseSpec:
    """Validate a mapping (already parsed YAML) into a :class:`ReleaseSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{origin}: the spec must be a YAML mapping of keys")
    _merge_sdv_metadata(raw, base)
    try:
        spec = ReleaseSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{origin}: " + format_validation_error(exc)) from None
    return _resolve_paths(spec, base)


def load_spec(path: str | Path) -> ReleaseSpec:
    """Read and validate a YAML spec; relative paths are taken from the spec's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {type(exc).__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}") from None
    return parse_spec(raw, base=path.resolve().parent, origin=str(path))
