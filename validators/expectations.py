"""A Great Expectations suite built from the public schema alone, run on synthetic data.

The suite is planned from the declared columns (no rows are looked at): the table has
exactly the declared columns; non-nullable columns have no nulls; numbers and datetimes
lie within the declared bounds; integer columns hold integral values; categorical
columns hold declared labels (plus the ``other`` label when declared); booleans are
True/False. GX is imported inside :func:`run_expectations` (a 6-20 s import).

Fail closed: any exception inside GX, a result missing for a planned expectation, or an
expectation that raised internally makes the result fail. Only the expectation type,
the column and pass/fail are copied out, never observed values.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from synthrelease.owner_only import private_dir, tighten
from synthrelease.spec import BooleanColumn, CategoricalColumn, DatetimeColumn, NumericalColumn

logger = logging.getLogger(__name__)

# Matches the string form of an integral value: "3", "-3", "3.0", "1e+20" (floats of
# 1e16 and more print in exponent form and are all integral). Rejects "2.5", "1e-05", "inf".
INTEGRAL_REGEX = r"^[+-]?(?:\d+(?:\.0*)?|\d(?:\.\d+)?e\+\d+)$"


@dataclass(frozen=True)
class PlannedExpectation:
    """One GX expectation, as data: the class name in ``great_expectations.expectations``."""

    kind: str
    column: str | None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class Outcome(NamedTuple):
    expectation: str  # GX expectation type, e.g. "expect_column_values_to_be_between"
    column: str | None
    success: bool


@dataclass(frozen=True)
class ExpectationResult:
    success: bool
    results: tuple[Outcome, ...]
    error: str | None = None  # exception type name when the run itself failed

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(r for r in self.results if not r.success)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "error": self.error,
            "results": [r._asdict() for r in self.results],
        }


def plan_expectations(
    columns: Mapping[str, object], *, expected_rows: int | None = None
) -> tuple[PlannedExpectation, ...]:
    """The suite for a schema, as plain data (no GX import)."""
    plan = [
        PlannedExpectation(
            "ExpectTableColumnsToMatchSet",
            None,
            {"column_set": list(columns), "exact_match": True},
        )
    ]
    if expected_rows is None:
        plan.append(PlannedExpectation("ExpectTableRowCountToBeBetween", None, {"min_value": 1}))
    else:
        plan.append(
            PlannedExpectation("ExpectTableRowCountToEqual", None, {"value": expected_rows})
        )
    for name, spec in columns.items():
        plan.extend(_column_plan(name, spec))
    return tuple(plan)


def _column_plan(name: str, spec: object) -> list[PlannedExpectation]:
    out = []
    if not getattr(spec, "nullable", False):
        out.append(PlannedExpectation("ExpectColumnValuesToNotBeNull", name))
    if isinstance(spec, NumericalColumn):
        out.append(
            PlannedExpectation(
                "ExpectColumnValuesToBeBetween",
                name,
                {"min_value": spec.lower, "max_value": spec.upper},
            )
        )
        if spec.integer:
            out.append(
                PlannedExpectation(
                    "ExpectColumnValuesToMatchRegex", name, {"regex": INTEGRAL_REGEX}
                )
            )
    elif isinstance(spec, CategoricalColumn):
        labels = list(spec.labels)
        out.append(PlannedExpectation("ExpectColumnValuesToBeInSet", name, {"value_set": labels}))
    elif isinstance(spec, BooleanColumn):
        out.append(
            PlannedExpectation("ExpectColumnValuesToBeInSet", name, {"value_set": [True, False]})
        )
    elif isinstance(spec, DatetimeColumn):
        out.append(
            PlannedExpectation(
                "ExpectColumnValuesToBeBetween",
                name,
                {"min_value": _naive_utc(spec.lower), "max_value": _naive_utc(spec.upper)},
            )
        )
    else:
        raise TypeError(f"column {name!r}: unsupported column type {type(spec).__name__}")
    return out


def _naive_utc(value: dt.datetime) -> dt.datetime:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def run_expectations(
    synthetic: pd.DataFrame,
    columns: Mapping[str, object],
    *,
    expected_rows: int | None = None,
    data_docs: Path | None = None,
) -> ExpectationResult:
    """Validate a synthetic table against the schema's suite. Never raises; fails closed.

    ``expected_rows`` (the public row count from the spec) pins the table's row count;
    without it the table must merely be non-empty. ``data_docs``: a folder (in the
    private workspace) to write GX Data Docs into, owner-only; they show the synthetic
    table's results and load their CSS/JS from CDNs (unstyled offline). Failing to
    write them fails the suite too.
    """
    try:
        plan = plan_expectations(columns, expected_rows=expected_rows)
        frame = _prepared(synthetic, columns)
        result = _run(frame, plan) if data_docs is None else _run(frame, plan, data_docs=data_docs)
    except Exception as exc:
        logger.warning("expectations: the run failed (%s)", type(exc).__name__)
        return ExpectationResult(success=False, results=(), error=type(exc).__name__)
    logger.info(
        "expectations: %d of %d passed",
        len(result.results) - len(result.failed),
        len(result.results),
    )
    return result


def _prepared(synthetic: pd.DataFrame, columns: Mapping[str, object]) -> pd.DataFrame:
    """A shallow copy with tz-aware datetime columns as naive UTC (bounds are naive UTC)."""
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError("synthetic must be a pandas DataFrame")
    frame = synthetic
    for name, spec in columns.items():
        if (
            isinstance(spec, DatetimeColumn)
            and name in frame.columns
            and isinstance(frame[name].dtype, pd.DatetimeTZDtype)
        ):
            if frame is synthetic:
                frame = synthetic.copy(deep=False)
            frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _run(
    frame: pd.DataFrame, plan: tuple[PlannedExpectation, ...], *, data_docs: Path | None = None
) -> ExpectationResult:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("synthetic")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="schema"))
    order: dict[str, int] = {}
    for i, planned in enumerate(plan):
        kwargs = dict(planned.kwargs)
        if planned.column is not None:
            kwargs["column"] = planned.column
        expectation = suite.add_expectation(getattr(gxe, planned.kind)(**kwargs))
        order[str(expectation.id)] = i
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="schema")
    )
    if data_docs is None:
        run = definition.run(batch_parameters={"dataframe": frame}, result_format="BOOLEAN_ONLY")
    else:
        run = _run_with_docs(context, definition, frame, Path(data_docs))

    slots: list[Outcome | None] = [None] * len(plan)
    for res in run.results:
        config = res.expectation_config
        at = order.get(str(config.id)) if config is not None else None
        if config is None or at is None or slots[at] is not None:
            raise RuntimeError("GX returned a result for an unplanned expectation")
        ok = res.success is True and not _raised(res.exception_info)
        slots[at] = Outcome(str(config.type), plan[at].column, ok)
    missing = sum(slot is None for slot in slots)
    outcomes = tuple(
        slot if slot is not None else Outcome("missing_result", plan[i].column, False)
        for i, slot in enumerate(slots)
    )
    if missing:
        logger.warning("expectations: %d planned expectations returned no result", missing)
    success = run.success is True and all(o.success for o in outcomes) and bool(outcomes)
    return ExpectationResult(success=success, results=outcomes)


def _run_with_docs(context: Any, definition: Any, frame: pd.DataFrame, folder: Path) -> Any:
    """Run the suite through a Checkpoint that writes Data Docs into ``folder``."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    private_dir(folder)
    context.add_data_docs_site(
        site_name="internal",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
        },
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="schema",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=["internal"])],
            result_format="SUMMARY",
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    tighten(folder)
    runs = list(result.run_results.values())
    if len(runs) != 1:
        raise RuntimeError("GX returned an unexpected number of validation runs")
    if not (folder / "index.html").exists():
        raise RuntimeError("GX wrote no Data Docs")
    return runs[0]


def _raised(info: Any) -> bool:
    """GX nests exception info either flat or per metric; any raise is a failure."""
    if not info:
        return False
    if not isinstance(info, Mapping):
        return True
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, Mapping) and v.get("raised_exception") for v in info.values())
