"""End to end: `spec draft --dp` on the demo table, then `synthrelease run` publishes a
release whose every column says provenance dp, with the draft's spend in the ledger."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from synthrelease.cli import main
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import ROOT

ADULT = ROOT / "data" / "adult" / "adult_train.csv"


def test_dp_draft_then_run_publishes_with_dp_provenance(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    data = tmp_path / "adult_sample.csv"
    pd.read_csv(ADULT, keep_default_na=False, na_values=[""]).sample(n=6000, random_state=0).to_csv(
        data, index=False
    )
    spec_path = tmp_path / "specs" / "adult.yaml"
    ws = tmp_path / "ws"
    code = main(
        [
            "spec",
            "draft",
            str(data),
            "--name",
            "adult",
            "--target",
            "income",
            "-o",
            str(spec_path),
            "--dp",
            "0.5",
            "--workspace",
            str(ws),
            "--seed",
            "11",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    raw = yaml.safe_load(spec_path.read_text())
    assert {c["provenance"] for c in raw["schema"]["columns"].values()} == {"dp"}
    # reproducible for the test: seeded release noise (the manifest must then say so)
    raw["privacy"].update(noise="seeded", seed=5)
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(spec_path)
    assert spec.workspace.path == ws.resolve()

    code = main(["run", str(spec_path), "--engine", "direct"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "published" in out

    ledger = BudgetLedger.sqlite(ws / "ledger.sqlite")
    try:
        entries = ledger.entries("adult")
    finally:
        ledger.close()
    assert [(e.status, e.epsilon) for e in entries] == [("spent", 0.5), ("committed", 1.0)]
    draft_run = entries[0].run_id
    assert draft_run.startswith("draft-")

    store = ReleaseStore(spec.store.uri)
    (release,) = store.releases()
    manifest = store.manifest("adult", release.version)
    assert next(iter(manifest)) == "noise" and manifest["noise"] == "seeded - NOT PRIVATE"
    prov = manifest["provenance"]
    assert set(prov["columns"]) == set(raw["schema"]["columns"])
    assert {c["domain"] for c in prov["columns"].values()} == {"dp"}
    assert prov["not_dp"] is None
    assert prov["synthetic_rows"] == "default" and prov["delta"] == "default"
    assert prov["domain_estimate"]["ledger_run_id"] == draft_run
    assert manifest["privacy"]["end_to_end"]["epsilon"] == pytest.approx(1.5)
    assert manifest["synthetic_rows"] == 10000
    readme = store.read_verified("adult", release.version, "README.md").decode()
    assert readme.splitlines()[0].startswith("**noise: seeded - NOT PRIVATE**")
    assert "NOT differentially private" not in readme
    json.dumps(manifest)
