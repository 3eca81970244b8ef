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
    assert raw["provenance"] == {"synthetic_rows": "declared", "delta": "declared"}


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
    (entry,) = _ledger_entries(ws)
    assert (entry.dataset, entry.epsilon, entry.delta) == ("t", 2.0, 1e-8)
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
