"""The release steps as plain functions, on a small seeded table (no Prefect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrelease import pipeline, run
from synthrelease.errors import BudgetExceededError, ChargedRunError, GateFailedError
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import make_table


def run_all(spec_path, *, before_gate=None):
    """One release through ``run.release`` (as release_many does); ``before_gate(paths)``
    runs just before the gate step."""

    gate = run.gate

    def gate_after_hook(run_dir):
        before_gate(pipeline.PinnedRun.load(run_dir).paths)
        return gate(run_dir)

    if before_gate:
        run.gate = gate_after_hook
    try:
        summary = run.release(spec_path)
    finally:
        run.gate = gate
    return summary.release_id, summary.run_id


def statuses(spec):
    led = BudgetLedger.sqlite(spec.workspace.path / "ledger.sqlite")
    try:
        return [e.status for e in led.entries(spec.name)]
    finally:
        led.close()


def test_full_release_publishes_synthetic_only(spec_factory):
    path = spec_factory()
    spec = load_spec(path)
    release_id, run_id = run_all(path)
    name, version = release_id.split("@")
    store = ReleaseStore(spec.store.uri)
    manifest = store.manifest(name, version)
    assert manifest["privacy"]["epsilon"] == pytest.approx(3.0)
    assert manifest["privacy"]["delta"] == 1e-6
    assert manifest["spec_sha256"] == spec.digest()
    assert manifest["gate"]["passed"] is True
    assert all("figure" not in c for c in manifest["gate"]["checks"])  # no real-data figures
    assert sum(ln["rho"] for ln in manifest["privacy"]["details"]["lines"]) == pytest.approx(
        manifest["privacy"]["details"]["rho"]
    )
    files = sorted(
        p.relative_to(Path(spec.store.uri) / "small" / version).as_posix()
        for p in (Path(spec.store.uri) / "small" / version).rglob("*")
        if p.is_file()
    )
    assert {"README.md", "manifest.json", "synthetic/small.parquet"} <= set(files)
    assert {f.rsplit(".", 1)[-1] for f in files} <= {"md", "json", "parquet", "onnx", "html"}
    df = store.load_table(name, version)
    assert len(df) == spec.synthetic_rows and list(df.columns) == list(spec.columns)
    # the split copies of the sensitive rows are gone; the private report stays
    run_dir = spec.workspace.path / "runs" / run_id
    assert not (run_dir / "split").exists()
    assert (run_dir / "report" / "report.html").exists()
    assert oct((run_dir / "report").stat().st_mode & 0o777) == oct(0o700)
    assert statuses(spec) == ["committed"]


def test_no_training_row_is_copied_into_the_release(spec_factory):
    path = spec_factory()
    spec = load_spec(path)
    release_id, _ = run_all(path)
    df = ReleaseStore(spec.store.uri).load_table(*release_id.split("@"))
    real = make_table()
    # 'score' is continuous: a synthetic row equal to a real one on it would be a copy
    assert not set(df["score"].dropna().round(9)) & set(real["score"].dropna().round(9))


def test_gate_fails_closed_when_figures_are_missing(spec_factory):
    path = spec_factory()
    spec = load_spec(path)
    with pytest.raises(GateFailedError, match="nothing was published"):
        run_all(path, before_gate=lambda paths: (paths.root / pipeline.FIGURES_FILE).unlink())
    assert ReleaseStore(spec.store.uri).releases() == []
    assert statuses(spec) == ["spent"]  # the data was touched: never refunded


def test_gate_fails_closed_on_nan_figure(spec_factory):
    path = spec_factory()
    spec = load_spec(path)

    def poison(paths):
        f = paths.root / pipeline.FIGURES_FILE
        doc = json.loads(f.read_text())
        doc["figures"]["tvd_2way"] = float("nan")
        f.write_text(json.dumps(doc))

    with pytest.raises(GateFailedError, match="tvd_2way"):
        run_all(path, before_gate=poison)
    assert ReleaseStore(spec.store.uri).releases() == []


def test_strict_threshold_blocks_the_release(spec_factory):
    path = spec_factory(gate={"max_tvd_2way": 1e-6})
    spec = load_spec(path)
    with pytest.raises(GateFailedError, match=r"tvd_2way \(threshold 1e-06\)"):
        run_all(path)
    assert ReleaseStore(spec.store.uri).releases() == []
    assert statuses(spec) == ["spent"]


def _schema_with(column, **changes):
    import copy

    from tests.conftest import SMALL_COLUMNS

    columns = copy.deepcopy(SMALL_COLUMNS)
    columns[column].update(changes)
    return {"columns": columns}


def test_too_few_rows_after_the_read_is_charged_and_says_nothing(spec_factory, tmp_path):
    """Every row dropped by the domain rule: the run read the table, so it is spent, and
    its public message does not say why (the reason is in the run's folder)."""
    df = make_table(500)
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    path = spec_factory(
        source={"kind": "csv", "path": str(bad)},
        schema=_schema_with("age", lower=200, upper=201, out_of_domain="drop"),
    )
    spec = load_spec(path)
    with pytest.raises(ChargedRunError) as info:
        run_all(path)
    message = str(info.value).split("private workspace:")[0]  # the tmp path names the test
    assert "failed after reading the table" in message and "charged" in message
    assert "few rows" not in message and "'age'" not in message
    assert statuses(spec) == ["spent"]
    assert ReleaseStore(spec.store.uri).releases() == []
    assert not list((spec.workspace.path / "runs").glob("*/split/*"))
    failure = next((spec.workspace.path / "runs").glob("*/failure.txt")).read_text()
    assert "SchemaMismatchError" in failure  # the private reason


@pytest.mark.parametrize("policy, expect_clipped, expect_dropped", [(None, 2, 0), ("drop", 0, 2)])
def test_numbers_outside_bounds_are_clipped_by_default_or_dropped(
    spec_factory, tmp_path, policy, expect_clipped, expect_dropped
):
    df = make_table(800)
    df.loc[3, "age"] = 250
    df.loc[4, "age"] = -7
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    changes = {} if policy is None else {"out_of_domain": policy}
    path = spec_factory(
        source={"kind": "csv", "path": str(data)}, schema=_schema_with("age", **changes)
    )
    spec = load_spec(path)
    release_id, run_id = run_all(path)
    domain = json.loads((spec.workspace.path / "runs" / run_id / pipeline.DOMAIN_FILE).read_text())
    assert domain["source"]["age"] == {"clipped": expect_clipped, "dropped": expect_dropped}
    report = spec.workspace.path / "runs" / run_id / "report"
    assert json.loads((report / "report.json").read_text())["domain"]["source"]["age"] == {
        "clipped": expect_clipped,
        "dropped": expect_dropped,
    }  # counted in the internal report
    assert "Out-of-domain values" in (report / "report.html").read_text()
    manifest = ReleaseStore(spec.store.uri).manifest(*release_id.split("@"))
    assert "clipped" not in json.dumps(manifest)  # real-data counts stay internal
    assert statuses(spec) == ["committed"]


def test_exhausted_budget_refuses_before_reading(spec_factory):
    path = spec_factory(
        privacy={
            "epsilon": 6.0,
            "delta": 1e-6,
            "noise": "seeded",
            "seed": 1,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
        }
    )
    spec = load_spec(path)
    run_all(path)
    with pytest.raises(BudgetExceededError, match="spent epsilon 6 of 10"):
        run_all(path)
    assert statuses(spec) == ["committed"]
    assert len(ReleaseStore(spec.store.uri).releases()) == 1


def test_unexpected_errors_are_replaced_by_the_one_public_failure(spec_factory, monkeypatch):
    path = spec_factory()
    spec = load_spec(path)

    def boom(*_args, **_kwargs):
        raise KeyError("Alice-SECRET-VALUE")

    boom.__name__ = "check"
    monkeypatch.setattr(run, "check", run.private_step(boom))
    with pytest.raises(ChargedRunError) as info:
        run_all(path)
    assert "KeyError" not in str(info.value) and "SECRET" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    errors = list((spec.workspace.path / "runs").glob("*/failure.txt"))
    assert len(errors) == 1 and "Alice-SECRET-VALUE" in errors[0].read_text()  # private only
    assert "step check: KeyError" in errors[0].read_text()
    assert statuses(spec) == ["spent"]


def test_delta_not_well_below_one_over_n_warns_privately(spec_factory, caplog):
    path = spec_factory(
        privacy={
            "epsilon": 3.0,
            "delta": 1e-3,
            "noise": "seeded",
            "seed": 2,
            "budget": {"epsilon": 10.0, "delta": 1e-2},
        }
    )
    spec = load_spec(path)
    with caplog.at_level("DEBUG"):
        try:
            run_all(path)
        except GateFailedError:
            pass  # the warning comes from training; the gate's verdict is not the point here
    # it depends on a (DP) estimate of the rows, logged inside a step that reads rows:
    # it goes to the run's private log only, never to stderr/Prefect
    assert not [r for r in caplog.records if "delta is not well below" in r.getMessage()]
    private = next((spec.workspace.path / "runs").glob("*/private.log")).read_text()
    assert private.count("delta is not well below 1/n") == 1
    assert "3000" not in private  # the private count is not logged


def test_check_in_parts_equals_the_whole_check_and_fails_closed(spec_factory):
    """The parallel flows' check: every part, merged, gives the figures of the whole check
    (seeded); a part that never ran leaves its figures out and the gate fails."""
    import json
    import math

    from synthrelease import pipeline

    spec = load_spec(spec_factory())
    pinned = pipeline.pin(spec, pipeline.new_run_id())
    path = str(pinned.root)
    run.reserve(path)
    for step in (run.train, run.sample, run.check):
        step(path)
    paths = pinned.paths
    whole = json.loads((paths.root / pipeline.FIGURES_FILE).read_text())
    parts = pipeline.check_parts(spec)
    assert parts[0] == "expectations" and "tstr" not in parts  # the small spec has no target
    for part in parts:
        run.check_part(path, part)
    run.merge_checks(path)
    merged = json.loads((paths.root / pipeline.FIGURES_FILE).read_text())
    assert set(merged["figures"]) == set(whole["figures"]) and len(whole["figures"]) >= 20
    for key, value in whole["figures"].items():
        other = merged["figures"][key]
        assert (math.isnan(value) and math.isnan(other)) or other == pytest.approx(value), key
    assert merged["expectations"]["success"] == whole["expectations"]["success"]
    assert pipeline.gate(pinned).passed is True
    # a lost part: its figures are missing, the gate fails closed
    (paths.root / pipeline.CHECKS_DIR / "membership.json").unlink()
    run.merge_checks(path)
    merged = json.loads((paths.root / pipeline.FIGURES_FILE).read_text())
    assert merged["errors"]["membership"] == "MissingPart" and "mia_auc" not in merged["figures"]
    verdict = pipeline.gate(pinned)
    assert verdict.passed is False
    assert [c.name for c in verdict.failed] == ["mia_auc"]
    with pytest.raises(Exception, match="unknown check part"):
        pipeline.check_part(pinned, "bogus")
    run.check_part(path, "bogus")  # inside the run: recorded privately, run failed
    assert "unknown check part" in (paths.root / pipeline.FAILURE_FILE).read_text()
    assert pipeline.PinnedRun.load(path).failed
