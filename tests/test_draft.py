"""`spec draft`: complete, valid, and no rare value or exact extreme made public; what
it reads from the rows without DP says so (provenance: drafted); `--dp` charges the
ledger before reading and marks its estimates provenance: dp."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from synthrelease.errors import SpecError
from synthrelease.ledger import BudgetLedger
from synthrelease.private.draft import draft_spec
from synthrelease.private.draft_columns import round_outward
from synthrelease.spec import load_spec

REAL_GATE = {"test_a_drafted_spec_with_a_0_1_target_releases"}


@pytest.fixture(autouse=True)
def _no_gate_simulation(request, monkeypatch):
    """``planning.gate_for_draft`` fits the chosen generator on a stand-in table (seconds
    per draft): stubbed here, except in the tests of REAL_GATE."""
    if request.node.name not in REAL_GATE:
        monkeypatch.setattr("synthrelease.private.draft.gate_for_draft", lambda spec, rows: {})


def _table(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(17, 91, size=n),
            "income": rng.lognormal(10, 1, size=n).round(2),
            "dept": rng.choice(["sales", "ops", "it"], size=n),
            "active": rng.random(n) < 0.5,
            "joined": pd.to_datetime("2015-03-01")
            + pd.to_timedelta(rng.integers(0, 3000, n), unit="D"),
        }
    )
    df.loc[0, "dept"] = "Atlantis"  # seen once: must not become public
    for i in range(1, 10):  # seen 9 times (< k=10)
        df.loc[i, "dept"] = "rare9"
    return df


def test_draft_protects_rare_values_and_extremes(tmp_path):
    df = _table()
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "specs" / "t.yaml"
    draft_spec(data, name="t", output=out, target="active")
    text = out.read_text()
    assert text.startswith("# Release spec DRAFTED")
    assert "become PUBLIC" in text.replace("becomes PUBLIC", "become PUBLIC")
    assert "Atlantis" not in text and "rare9" not in text
    raw = yaml.safe_load(text)
    cols = raw["schema"]["columns"]
    assert cols["dept"]["type"] == "categorical"
    assert sorted(cols["dept"]["categories"]) == ["it", "ops", "sales"]
    assert cols["dept"]["other"] == "other"
    assert cols["active"]["type"] == "boolean"
    assert cols["joined"]["type"] == "datetime"
    for name in ("age", "income"):
        c = cols[name]
        assert c["type"] == "numerical"
        assert c["lower"] < df[name].min() and c["upper"] > df[name].max()
    assert cols["age"]["integer"] is True
    assert raw["synthetic_rows"] == 10000 and raw["target"] == "active"
    assert {c["provenance"] for c in cols.values()} == {"drafted"}
    assert "WITHOUT DIFFERENTIAL PRIVACY" in text
    spec = load_spec(out)  # valid, with the source path resolved from the spec's folder
    assert spec.source.path == data.resolve()
    assert spec.not_dp["columns"] == list(cols)
    assert spec.provenance.synthetic_rows == "default" and spec.provenance.delta == "default"


def test_row_count_and_delta_do_not_depend_on_the_rows(tmp_path):
    drafts = []
    for n in (150, 2345, 40_000):
        data = tmp_path / f"t{n}.parquet"
        _table(n=n).to_parquet(data)
        raw = draft_spec(data, name="t", output=tmp_path / f"t{n}.yaml")
        drafts.append((raw["synthetic_rows"], raw["privacy"]["delta"], raw["privacy"]["budget"]))
        # expected_rows does: the row count rounded DOWN to two significant digits, NOT DP
        assert raw["expected_rows"] == {150: 150, 2345: 2300, 40_000: 40_000}[n]
        assert raw["provenance"]["expected_rows"] == "drafted"
    assert drafts[0] == drafts[1] == drafts[2] == (10000, 1e-6, {"epsilon": 10.0, "delta": 1e-5})
    raw = draft_spec(
        tmp_path / "t150.parquet",
        name="t",
        output=tmp_path / "o.yaml",
        rows=500,
        delta=1e-7,
        budget_epsilon=4.0,
        budget_delta=1e-6,
    )
    assert raw["synthetic_rows"] == 500 and raw["privacy"]["delta"] == 1e-7
    assert raw["privacy"]["budget"] == {"epsilon": 4.0, "delta": 1e-6}
    assert raw["provenance"] == {
        "synthetic_rows": "declared",
        "delta": "declared",
        "expected_rows": "drafted",
    }
    assert "rounded DOWN to two significant digits" in (tmp_path / "o.yaml").read_text()


def _ledger_entries(ws):
    ledger = BudgetLedger.sqlite(ws / "ledger.sqlite")
    try:
        return ledger.entries()
    finally:
        ledger.close()


def test_dp_draft_charges_the_ledger_and_marks_columns_dp(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    data = tmp_path / "t.csv"
    _table(n=20_000).to_csv(data, index=False)
    ws = tmp_path / "ws"
    out = tmp_path / "specs" / "t.yaml"
    raw = draft_spec(
        data,
        name="t",
        output=out,
        target="active",
        dp=2.0,
        dp_delta=1e-8,
        workspace=ws,
        budget_epsilon=5.0,
        budget_delta=1e-5,
        seed=4,
    )
    (entry,) = _ledger_entries(ws)  # one entry: the domains and the row count
    assert (entry.dataset, entry.epsilon, entry.delta) == ("t", 2.0, 1e-8)
    assert raw["provenance"]["expected_rows"] == "dp"
    assert raw["expected_rows"] != 20_000 and abs(raw["expected_rows"] - 20_000) < 100
    assert entry.status == "spent" and entry.reason == "spec draft --dp"
    assert entry.run_id.startswith("draft-")
    assert raw["provenance"]["domain_estimate"] == {
        "epsilon": 2.0,
        "delta": 1e-8,
        "run_id": entry.run_id,
    }
    cols = raw["schema"]["columns"]
    assert {c["provenance"] for c in cols.values()} == {"dp"}
    assert [cols[c]["type"] for c in ("age", "income", "dept", "active", "joined")] == [
        "numerical",
        "numerical",
        "categorical",
        "boolean",
        "datetime",
    ]
    assert cols["age"]["integer"] is True
    assert cols["dept"]["categories"] == ["it", "ops", "sales"]  # Atlantis, rare9 suppressed
    assert cols["dept"]["other"] == "other"
    text = out.read_text()
    assert "Atlantis" not in text and "rare9" not in text and entry.run_id in text
    spec = load_spec(out)
    assert spec.workspace.path == ws.resolve()  # the run charges the same ledger
    assert spec.privacy.budget.epsilon == 5.0 and spec.not_dp == {"columns": [], "values": []}
    assert spec.privacy.epsilon == 1.0 and spec.provenance.domain_estimate.run_id == entry.run_id


def test_dp_draft_refusals_happen_before_any_charge(tmp_path, monkeypatch):
    data = tmp_path / "t.csv"
    _table().to_csv(data, index=False)
    ws = tmp_path / "ws"
    monkeypatch.delenv("SYNTHRELEASE_TEST_NOISE", raising=False)
    with pytest.raises(SpecError, match="SYNTHRELEASE_TEST_NOISE"):
        draft_spec(data, name="t", output=tmp_path / "o.yaml", dp=1.0, workspace=ws, seed=1)
    with pytest.raises(SpecError, match="--target 'nope'"):
        draft_spec(data, name="t", output=tmp_path / "o.yaml", dp=1.0, workspace=ws, target="nope")
    with pytest.raises(SpecError, match="name"):
        draft_spec(data, name="../x", output=tmp_path / "o.yaml", dp=1.0, workspace=ws)
    with pytest.raises(SpecError, match="exceed the lifetime budget"):
        draft_spec(
            data, name="t", output=tmp_path / "o.yaml", dp=3.0, workspace=ws, budget_epsilon=2.0
        )
    with pytest.raises(SpecError, match="--dp must be"):
        draft_spec(data, name="t", output=tmp_path / "o.yaml", dp=-1.0, workspace=ws)
    assert not (ws / "ledger.sqlite").exists() or _ledger_entries(ws) == []


def test_dp_draft_past_the_budget_reads_nothing(tmp_path):
    from synthrelease.errors import BudgetExceededError

    data = tmp_path / "t.csv"
    _table().to_csv(data, index=False)
    ws = tmp_path / "ws"
    draft_spec(data, name="t", output=tmp_path / "a.yaml", dp=3.0, workspace=ws, budget_epsilon=4.0)
    data.write_text(",".join(_table().columns) + "\n")  # a read would fail otherwise
    with pytest.raises(BudgetExceededError):
        draft_spec(
            data, name="t", output=tmp_path / "b.yaml", dp=3.0, workspace=ws, budget_epsilon=4.0
        )
    assert [e.status for e in _ledger_entries(ws)] == ["spent"]
    assert not (tmp_path / "b.yaml").exists()


def test_cli_draft_with_dp(tmp_path, monkeypatch, capsys):
    from synthrelease.cli import main

    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    data = tmp_path / "t.csv"
    _table(n=5000).to_csv(data, index=False)
    out = tmp_path / "t.yaml"
    code = main(
        [
            "spec",
            "draft",
            str(data),
            "--name",
            "t",
            "-o",
            str(out),
            "--dp",
            "1.5",
            "--dp-delta",
            "1e-9",
            "--workspace",
            str(tmp_path / "ws"),
            "--budget-epsilon",
            "6",
            "--budget-delta",
            "1e-6",
            "--rows",
            "777",
            "--delta",
            "1e-7",
            "--seed",
            "2",
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "(1.5, 1e-09)-DP" in stdout
    spec = load_spec(out)
    assert spec.synthetic_rows == 777 and spec.privacy.delta == 1e-7
    assert spec.privacy.budget.epsilon == 6.0 and spec.privacy.budget.delta == 1e-6
    assert {c.provenance for c in spec.columns.values()} == {"dp"}
    assert [e.status for e in _ledger_entries(tmp_path / "ws")] == ["spent"]


@pytest.mark.parametrize(
    "lo, hi", [(17, 90), (0, 99999), (1, 16), (-3.2, 7.9), (5, 5), (1e-3, 2e-3)]
)
def test_bounds_round_outward_and_never_hit_the_exact_extremes(lo, hi):
    integer = float(lo).is_integer() and float(hi).is_integer()
    lower, upper = round_outward(lo, hi, integer=integer)
    assert lower < lo and upper > hi


def test_unknown_target_and_format(tmp_path):
    data = tmp_path / "t.csv"
    _table().to_csv(data, index=False)
    with pytest.raises(SpecError, match="--target 'nope'"):
        draft_spec(data, name="t", output=tmp_path / "o.yaml", target="nope")
    odd = tmp_path / "t.xlsx"
    odd.write_text("x")
    with pytest.raises(Exception, match="unknown table format"):
        draft_spec(odd, name="t", output=tmp_path / "o.yaml")


# --------------------------------------------------------------------------- issue 14
def _typed(n=3000, seed=2):
    """Columns that each exercise one type rule (see private/draft.py)."""
    rng = np.random.default_rng(seed)
    outcome = pd.Series(rng.integers(0, 2, n), dtype="Int64")
    outcome[rng.random(n) < 0.05] = pd.NA  # nulls: pandas reads the CSV column as float
    likert = pd.Series(rng.integers(1, 6, n), dtype="Int64")
    likert[rng.random(n) < 0.05] = pd.NA
    return pd.DataFrame(
        {
            "outcome": outcome,
            "flag": rng.integers(0, 2, n),
            "answer": rng.choice(["yes", "no"], n),
            "yn": rng.choice(["Y", "n"], n),
            "three": rng.choice(["yes", "no", "maybe"], n),
            "likert": likert,
            "grade": rng.integers(1, 4, n).astype(float),  # CSV text "2.0": stays numerical
            "year": np.full(n, 2019),
            "wide": rng.integers(0, 101, n),
            "score": rng.random(n),
        }
    )


def test_draft_types_booleans_small_integers_and_constants(tmp_path):
    data = tmp_path / "t.csv"
    _typed().to_csv(data, index=False)
    assert "2.0" in data.read_text().splitlines()[1].split(",")[6]  # as the file holds it
    raw = draft_spec(data, name="t", output=tmp_path / "t.yaml")
    cols = raw["schema"]["columns"]
    for name in ("outcome", "flag", "answer", "yn"):
        assert cols[name] == {"type": "boolean", "nullable": True, "provenance": "drafted"}, name
    assert cols["three"]["type"] == "categorical"
    assert cols["three"]["categories"] == ["maybe", "no", "yes"]
    assert cols["likert"]["categories"] == ["1", "2", "3", "4", "5"]
    assert cols["likert"]["other"] == "other"
    assert cols["year"]["type"] == "categorical" and cols["year"]["categories"] == ["2019"]
    for name in ("grade", "wide", "score"):
        assert cols[name]["type"] == "numerical", name
    assert cols["grade"]["integer"] is True and cols["score"].get("integer") is None
    spec = load_spec(tmp_path / "t.yaml")
    assert spec.columns["likert"].policy == "other"


def test_small_integer_categories_sort_numerically_and_follow_the_k_rule(tmp_path):
    n = 2000
    rng = np.random.default_rng(3)
    kids = rng.integers(0, 12, n)
    kids[:5] = 30  # seen 5 times (< k): not a category, its rows go to 'other'
    data = tmp_path / "t.parquet"
    pd.DataFrame({"kids": kids, "x": rng.random(n)}).to_parquet(data)
    raw = draft_spec(data, name="t", output=tmp_path / "t.yaml")
    col = raw["schema"]["columns"]["kids"]
    assert col["categories"] == [str(i) for i in range(12)] and col["other"] == "other"
    assert "30" not in (tmp_path / "t.yaml").read_text().split("schema:")[1]


def test_the_target_has_no_other_bucket_and_drops_rare_labels(tmp_path):
    n = 2000
    rng = np.random.default_rng(4)
    income = rng.choice(["<=50K", ">50K"], n, p=[0.7, 0.3]).astype(object)
    income[:4] = "?"  # seen 4 times (< k)
    df = pd.DataFrame({"age": rng.integers(17, 91, n), "job": rng.choice(["a", "b"], n)})
    df["income"] = income
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "t.yaml"
    raw = draft_spec(data, name="t", output=out, target="income")
    col = raw["schema"]["columns"]["income"]
    assert col["categories"] == ["<=50K", ">50K"] and "other" not in col
    assert raw["schema"]["columns"]["job"]["other"] == "other"  # other columns keep it
    text = out.read_text()
    assert "target 'income': no 'other' bucket" in text and "DROPPED at release" in text
    assert "?" not in text.split("schema:")[1]
    spec = load_spec(out)
    assert spec.columns["income"].policy == "drop"  # a '?' row is left out, row by row
    # a target no value of which is common enough is refused, naming no value
    df["income"] = [f"id{i}" for i in range(n)]
    df.to_csv(data, index=False)
    with pytest.raises(SpecError, match="--target 'income': no value") as err:
        draft_spec(data, name="t", output=tmp_path / "u.yaml", target="income")
    assert "id1" not in str(err.value)


def test_expected_rows_declared_on_the_command_line(tmp_path, capsys):
    from synthrelease.cli import main

    data = tmp_path / "t.csv"
    _table(n=500).to_csv(data, index=False)
    out = tmp_path / "t.yaml"
    code = main(["spec", "draft", str(data), "--name", "t", "-o", str(out)])
    assert code == 0 and load_spec(out).expected_rows == 500
    code = main(
        ["spec", "draft", str(data), "--name", "t", "-o", str(out), "--expected-rows", "123456"]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    spec = load_spec(out)
    assert spec.expected_rows == 123456 and spec.provenance.expected_rows == "declared"
    assert "123456 expected rows (declared)" in stdout
    assert "declared with --expected-rows" in out.read_text()
    code = main(["spec", "draft", str(data), "--name", "t", "-o", str(out), "--expected-rows", "0"])
    assert code == 2 and "--expected-rows" in capsys.readouterr().err


def test_generator_follows_the_target_and_bins_follow_rows_and_columns(tmp_path):
    from synthrelease.planning import suggest_bins

    data = tmp_path / "t.csv"
    _table(n=300).to_csv(data, index=False)

    def draft(path, **kw):
        raw = draft_spec(path, name="t", output=tmp_path / "o.yaml", **kw)
        return raw["generator"]

    assert draft(data, target="active", expected_rows=10_000)["name"] == "aim"
    assert draft(data, expected_rows=10_000)["name"] == "mst"
    many, few = draft(data, expected_rows=100_000), draft(data, expected_rows=3000)
    assert many["params"] == {
        "bins": suggest_bins(rows=100_000, epsilon=1.0, delta=1e-6, columns=5)
    }
    assert few["params"]["bins"] < many["params"]["bins"]
    wide = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({f"c{i}": rng.random(300) for i in range(40)}).assign(y=1).to_csv(
        wide, index=False
    )
    wide_gen = draft(wide, target="y", expected_rows=100_000)
    assert wide_gen["name"] == "mst"  # 41 columns: MST even with a target
    assert wide_gen["params"]["bins"] < many["params"]["bins"]
    text = (tmp_path / "o.yaml").read_text()
    assert "generator mst: a target, but more than" in text and "params.bins" in text


def test_plan_of_the_dp_draft_gives_the_count_one_more_equal_share():
    from synthrelease.generators.accounting import cdp_rho
    from synthrelease.private.draft_dp import plan_dp_draft

    rho = cdp_rho(epsilon=1.0, delta=1e-8 / 2)
    plan = plan_dp_draft(epsilon=1.0, delta=1e-8, columns=4, count=True)
    assert plan.rho_column == pytest.approx(rho / 5) and plan.rho_count == pytest.approx(rho / 5)
    assert plan.delta_column == pytest.approx(1e-8 / 2 / 4)
    plan = plan_dp_draft(epsilon=1.0, delta=1e-8, columns=4, count=False)
    assert plan.rho_column == pytest.approx(rho / 4) and plan.rho_count == 0.0


def test_dp_draft_types_come_from_dp_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    data = tmp_path / "t.csv"
    _typed(n=20_000).to_csv(data, index=False)
    ws = tmp_path / "ws"
    raw = draft_spec(
        data,
        name="t",
        output=tmp_path / "t.yaml",
        target="outcome",
        dp=3.0,
        expected_rows=50_000,
        workspace=ws,
        seed=5,
    )
    cols = raw["schema"]["columns"]
    assert {n for n, c in cols.items() if c["type"] == "boolean"} == {
        "outcome",
        "flag",
        "answer",
        "yn",
    }
    assert cols["likert"]["categories"] == ["1", "2", "3", "4", "5"]
    assert cols["year"]["categories"] == ["2019"] and cols["year"]["other"] == "other"
    assert cols["three"]["categories"] == ["maybe", "no", "yes"]
    assert {n for n, c in cols.items() if c["type"] == "numerical"} == {"grade", "wide", "score"}
    assert {c["provenance"] for c in cols.values()} == {"dp"}
    assert raw["expected_rows"] == 50_000 and raw["provenance"]["expected_rows"] == "declared"
    (entry,) = _ledger_entries(ws)
    assert entry.epsilon == 3.0 and entry.status == "spent"


def test_the_gate_merges_the_planned_fields_over_the_defaults(tmp_path, monkeypatch):
    seen = {}

    def planned(spec, rows):
        seen.update(rows=rows, generator=spec.generator.name, target=spec.target)
        return {"max_tvd_2way": 0.123, "max_tvd_3way": 0.3}

    monkeypatch.setattr("synthrelease.private.draft.gate_for_draft", planned)
    data = tmp_path / "t.csv"
    _table(n=700).to_csv(data, index=False)
    out = tmp_path / "o.yaml"
    raw = draft_spec(data, name="t", output=out, target="active")
    assert seen == {"rows": 700, "generator": "aim", "target": "active"}
    assert raw["gate"] == {
        "max_tvd_1way": 0.1,
        "max_tvd_2way": 0.123,
        "max_exact_copy_excess": 0.03,
        "expectations": True,
        "max_tvd_3way": 0.3,
    }
    assert "planning.gate_for_draft (max_tvd_2way, max_tvd_3way)" in out.read_text()


def test_a_drafted_spec_with_a_0_1_target_releases(tmp_path, monkeypatch):
    """End to end: plain draft of a table with a 0/1 outcome (nulls included), then
    ``run.release``; the manifest shows the drafted types."""
    from synthrelease import run
    from synthrelease.store import ReleaseStore

    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    n = 3000
    rng = np.random.default_rng(6)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    outcome = pd.Series(
        np.where(group == "a", rng.random(n) < 0.8, rng.random(n) < 0.2).astype(int),
        dtype="Int64",
    )
    outcome[rng.random(n) < 0.03] = pd.NA
    df = pd.DataFrame(
        {
            "group": group,
            "visits": rng.integers(0, 6, n),
            "age": rng.integers(18, 80, n),
            "outcome": outcome,
        }
    )
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    spec_path = tmp_path / "specs" / "t.yaml"
    raw = draft_spec(data, name="t", output=spec_path, target="outcome", workspace=tmp_path / "ws")
    assert raw["schema"]["columns"]["outcome"]["type"] == "boolean"
    assert raw["schema"]["columns"]["visits"]["categories"] == [str(i) for i in range(6)]
    raw["privacy"].update(noise="seeded", seed=3)
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = run.release(str(spec_path))
    assert summary.passed
    spec = load_spec(spec_path)
    store = ReleaseStore(spec.store.uri)
    (release,) = store.releases()
    manifest = store.manifest("t", release.version)
    types = {n: c["type"] for n, c in manifest["schema"]["columns"].items()}
    assert types == {
        "group": "categorical",
        "visits": "categorical",
        "age": "numerical",
        "outcome": "boolean",
    }
    assert manifest["provenance"]["columns"]["outcome"]["domain"] == "drafted"
