"""The spec's other sections: privacy, generator, holdout, gate, workspace, store,
publication and the downstream models.

(Over 300 lines: declarations only, one small pydantic model per section, most of it the
gate's documented thresholds; splitting them would scatter the one place a spec key is
defined.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from synthrelease.spec.base import NAME_RE, _Model
from synthrelease.spec.sources import Source


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
        default=None,
        gt=0,
        le=0.5,
        allow_inf_nan=False,
        description="opt-in: share of this release's budget spent on DP estimates of the "
        "bounds/categories the schema leaves undeclared (one budget line per column); "
        "without it every domain must be declared",
    )

    @model_validator(mode="after")
    def _fits(self) -> Privacy:
        if self.epsilon > self.budget.epsilon:
            raise ValueError("epsilon is larger than the table's lifetime budget epsilon")
        if self.delta > self.budget.delta:
            raise ValueError("delta is larger than the table's lifetime budget delta")
        if self.noise == "seeded" and self.seed is None:
            raise ValueError("noise 'seeded' needs a 'seed'")
        if self.noise == "secure" and self.seed is not None:
            raise ValueError("'seed' is only allowed with noise 'seeded'")
        return self


ValueProvenance = Literal["declared", "default", "drafted", "dp"]


class DomainEstimate(_Model):
    """The DP measurement that ``spec draft --dp`` made of the domains marked
    ``provenance: dp``: its own budget-ledger entry, spent before the release runs."""

    epsilon: float = Field(gt=0, le=100, allow_inf_nan=False)
    delta: float = Field(ge=0, lt=1e-2, allow_inf_nan=False)
    run_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="the ledger entry's run id (draft-<uuid>)",
    )


class SpecProvenance(_Model):
    """Where the spec's public, data-shaping values come from (published in the
    manifest). Per column, see each column's ``provenance``."""

    synthetic_rows: ValueProvenance = Field(
        default="declared",
        description="'declared' by the custodian; 'default': a public default of `spec "
        "draft`, independent of the rows; 'drafted': read from the rows, NOT DP; 'dp'",
    )
    delta: ValueProvenance = Field(
        default="declared", description="provenance of privacy.delta (same values)"
    )
    expected_rows: ValueProvenance = Field(
        default="declared",
        description="provenance of expected_rows (same values; 'drafted': the row count "
        "read by `spec draft`, rounded down to two significant digits, NOT DP)",
    )
    domain_estimate: DomainEstimate | None = Field(
        default=None,
        description="the DP spend of `spec draft --dp` on the domains marked 'dp'",
    )


class GeneratorSpec(_Model):
    name: Literal["mst", "aim", "dpsgd"]
    params: dict[str, Any] = Field(default_factory=dict)


class Holdout(_Model):
    fraction: float | None = Field(default=0.2, gt=0, lt=1)
    source: Source | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Holdout:
        if self.source is not None and "fraction" in self.model_fields_set:
            raise ValueError("give either 'fraction' or 'source', not both")
        return self


class Gate(_Model):
    """Thresholds of the release gate. Every check fails closed.

    One ``max_<figure>``/``min_<figure>`` field per gated figure that a check of
    ``validators/checks/`` declares, with the declared default (this base layer cannot
    import that registry; ``tests/test_check_registry.py`` keeps the two in step)."""

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
        default=0.5,
        gt=0,
        le=1,
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
        default=0.15,
        ge=0,
        le=1,
        description="train-real minus train-synthetic score on the holdout (AUC, macro-F1 "
        "or R2) of a gradient-boosting model for `target`; checked only with a target",
    )
    max_near_copy_excess: float = Field(default=0.05, ge=0, le=1)
    max_dcr_train_share: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="share of synthetic rows closer to the training rows than to the "
        "holdout rows (same-size samples); about 0.5 without memorisation",
    )
    max_nndr_train_share: float = Field(default=0.6, gt=0, le=1)
    max_mia_auc: float = Field(
        default=0.6,
        gt=0,
        le=1,
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
        default=10_000,
        ge=100,
        le=10_000_000,
        description="rows per table for SDMetrics, TSTR and the distance-based checks "
        "(marginal TVDs and exact copies use max(this, 50000)); larger tables are "
        "subsampled (seeded)",
    )
    real_rows: int = Field(
        default=200_000,
        ge=1_000,
        le=10_000_000,
        description="rows of each real part (training, holdout) the checks read: a "
        "uniform sample of a larger part (the firewall's row scan still reads every row)",
    )
    attack_rows: int = Field(
        default=2_000,
        ge=50,
        le=1_000_000,
        description="synthetic rows compared by DCR/NNDR, and targets per privacy attack",
    )
    privacy_audit: bool = Field(
        default=True,
        description="the one-run privacy audit must run and pass: its empirical epsilon "
        "lower bound (95%) at or below the release's epsilon. Off, an audit that fails to "
        "run no longer blocks; a bound above the epsilon always does",
    )
    audit_canaries: int = Field(
        default=1_000,
        ge=2,
        le=100_000,
        description="the privacy audit's canaries, at most (one per cell of the domain's "
        "1-way marginals beyond the first of each column)",
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
        default=None,
        ge=1,
        le=10_000,
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
    def _algorithm(self) -> DownstreamModel:
        if self.algorithm not in MODEL_KINDS[self.kind]:
            raise ValueError(
                f"algorithm {self.algorithm!r} does not make a {self.kind}; use one of "
                + ", ".join(MODEL_KINDS[self.kind])
            )
        allowed = MODEL_PARAMS[self.algorithm]
        for key, value in self.params.items():
            if key not in allowed:
                raise ValueError(
                    f"unknown parameter {key!r} for {self.algorithm} (known: {', '.join(allowed)})"
                )
            kind, lower, upper = allowed[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (kind is int and not float(value).is_integer())
            ):
                raise ValueError(
                    f"parameter {key!r} must be a{'n integer' if kind is int else ' number'}"
                )
            if not (lower <= float(value) <= upper):
                raise ValueError(f"parameter {key!r} must be between {lower:g} and {upper:g}")
        return self
