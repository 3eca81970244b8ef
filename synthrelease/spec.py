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
DOMAIN_ESTIMATING_GENERATORS = ("dpsgd",)  # may leave bounds/categories to a DP estimate


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
    domain_share: float | None = Field(
        default=None, gt=0, le=0.5, allow_inf_nan=False,
        description="opt-in: share of this release's budget spent on DP estimates of the "
        "bounds/categories the schema leaves undeclared (one budget line per column); "
        "without it every domain must be declared",
    )

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
    # -- issue 5: the complete validation stage (validators/, see validators/gate.py) --
    max_tvd_3way: float = Field(
        default=0.5, gt=0, le=1,
        description="loose by default: 3-way marginals of a small holdout are mostly "
        "sampling noise (a 240-row holdout scores ~0.4 even against the truth); tighten it "
        "for large tables (Adult, MST at epsilon 1: ~0.12)",
    )
    min_quality_score: float = Field(
        default=0.7, ge=0, le=1, description="SDMetrics QualityReport score (holdout)"
    )
    min_diagnostic_score: float = Field(
        default=0.9, ge=0, le=1, description="SDMetrics DiagnosticReport score (holdout)"
    )
    max_tstr_gap: float = Field(
        default=0.15, ge=0, le=1,
        description="train-real minus train-synthetic score on the holdout (AUC, macro-F1 "
        "or R2) of a gradient-boosting model for `target`; checked only with a target",
    )
    max_near_copy_excess: float = Field(default=0.05, ge=0, le=1)
    max_dcr_train_share: float = Field(
        default=0.6, gt=0, le=1,
        description="share of synthetic rows closer to the training rows than to the "
        "holdout rows (same-size samples); about 0.5 without memorisation",
    )
    max_nndr_train_share: float = Field(default=0.6, gt=0, le=1)
    max_mia_auc: float = Field(
        default=0.6, gt=0, le=1,
        description="AUC of the membership-inference attack (its 95% bootstrap interval is "
        "in the internal report); 0.5 is no signal",
    )
    max_singling_out_risk: float = Field(
        default=0.1, ge=0, le=1, description="residual risk over the holdout control"
    )
    max_linkability_risk: float = Field(
        default=0.05, ge=0, le=1, description="residual risk over the holdout control"
    )
    max_inference_risk: float = Field(
        default=0.1, ge=0, le=1, description="residual risk, pooled over the columns"
    )
    sample_rows: int = Field(
        default=10_000, ge=100, le=10_000_000,
        description="rows per table for SDMetrics, TSTR and the distance-based checks "
        "(marginal TVDs and exact copies use max(this, 50000)); larger tables are "
        "subsampled (seeded)",
    )
    attack_rows: int = Field(
        default=2_000, ge=50, le=1_000_000,
        description="synthetic rows compared by DCR/NNDR, and targets per privacy attack",
    )
    publish_figures: bool = Field(
        default=False,
        description="opt in to publishing the real-data figures in the datasheet: they "
        "are NOT covered by differential privacy",
    )


class Workspace(_Model):
    """The private workspace: the only place originals and fitted models may live."""

    path: Path = Path(".synthrelease/workspace")
    ledger_url_env: str | None = Field(
        default=None,
        description="environment variable holding a SQLAlchemy URL for the ledger; "
        "default: SQLite file in the workspace",
    )


class Retention(_Model):
    """How many versions of a dataset the store keeps (the newest; the latest always)."""

    keep_last: int | None = Field(
        default=None, ge=1, le=10_000,
        description="keep the newest N versions, delete older ones after each publish "
        "(recorded in the dataset's history); default: keep every version",
    )


class Store(_Model):
    """The release store: an fsspec URI (a folder, or s3://bucket/prefix).

    Credentials never go here: S3 reads the standard AWS environment variables
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...).
    """

    uri: str = "releases"
    retention: Retention = Retention()

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if not value.strip():
            raise ValueError("must not be empty")
        if "://" in value:
            parts = urlsplit(value.split("::")[-1])
            if "@" in parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    "must not carry credentials, a query or a fragment: credentials come "
                    "from the environment (e.g. AWS_ACCESS_KEY_ID), never from the spec"
                )
        return value


class Publication(_Model):
    """What a release publishes beyond the synthetic table and its metadata."""

    generator: bool = Field(
        default=False,
        description="opt-in: also publish the fitted DP generator. It was trained on the "
        "sensitive rows, but only through the DP mechanism, so (by DP's post-processing "
        "property) releasing it costs no budget beyond the release's epsilon and delta; "
        "anyone can then sample unlimited synthetic rows from it",
    )


# --------------------------------------------------------------------------- models
MODEL_PARAMS: dict[str, dict[str, tuple[type, float, float]]] = {
    # algorithm -> parameter -> (type, lower, upper): a small, explicit whitelist
    "logistic_regression": {"C": (float, 1e-6, 1e6), "max_iter": (int, 10, 10_000)},
    "ridge": {"alpha": (float, 0.0, 1e6)},
    "random_forest": {
        "n_estimators": (int, 1, 500),
        "max_depth": (int, 1, 64),
        "min_samples_leaf": (int, 1, 100_000),
    },
}
MODEL_KINDS: dict[str, tuple[str, ...]] = {
    "classifier": ("logistic_regression", "random_forest"),
    "regressor": ("ridge", "random_forest"),
}


class DownstreamModel(_Model):
    """A model trained on the synthetic table only, published beside it (ONNX)."""

    name: str
    kind: Literal["classifier", "regressor"]
    target: str
    algorithm: Literal["logistic_regression", "ridge", "random_forest"] = "random_forest"
    features: tuple[str, ...] | None = Field(
        default=None, description="input columns; default: every column but the target"
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value) or ".." in value:
            raise ValueError("must be 1-64 letters, digits, '_', '-' or '.', without '..'")
        return value

    @model_validator(mode="after")
    def _algorithm(self) -> "DownstreamModel":
        if self.algorithm not in MODEL_KINDS[self.kind]:
            raise ValueError(
                f"algorithm {self.algorithm!r} does not make a {self.kind}; use one of "
                + ", ".join(MODEL_KINDS[self.kind])
            )
        allowed = MODEL_PARAMS[self.algorithm]
        for key, value in self.params.items():
            if key not in allowed:
                raise ValueError(f"unknown parameter {key!r} for {self.algorithm} "
                                 f"(known: {', '.join(allowed)})")
            kind, lower, upper = allowed[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind is int and not float(value).is_integer()
            ):
                raise ValueError(f"parameter {key!r} must be a{'n integer' if kind is int else ' number'}")
            if not (lower <= float(value) <= upper):
                raise ValueError(f"parameter {key!r} must be between {lower:g} and {upper:g}")
        return self


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
    models: tuple[DownstreamModel, ...] = Field(
        default=(), description="models trained on the synthetic table only, published"
    )
    publish: Publication = Publication()

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

    @model_validator(mode="after")
    def _domains(self) -> "ReleaseSpec":
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
    def _models(self) -> "ReleaseSpec":
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
                if m.target in m.features or not m.features or len(set(m.features)) != len(m.features):
                    raise ValueError(f"{where}: features must be distinct, non-empty and "
                                     "must not include the target")
            elif len(columns) < 2:
                raise ValueError(f"{where}: the schema has no column besides the target")
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
        update["store"] = spec.store.model_copy(
            update={"uri": str((base / spec.store.uri).resolve())}
        )
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
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}")
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
