"""The public datasheet holds no value computed from the real rows (unless the spec opts
in); the internal report holds everything; the verdict summary holds no figure."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pandas as pd
import pytest

from synthrelease import pipeline
from synthrelease.errors import PrivacyError
from synthrelease.spec import load_spec
from synthrelease.store import ReleaseStore
from synthrelease.validators.datasheet import (
    build_datasheet,
    datasheet_markdown,
    synthetic_statistics,
)
from synthrelease.validators.gate import THRESHOLD_CHECKS
from synthrelease.validators.summary import verdict_markdown


def _release(spec_path: Path):
    """The release steps in order, called directly (no Prefect)."""
    spec = load_spec(spec_path)
    pinned = pipeline.pin(spec, pipeline.new_run_id())
    pipeline.reserve(pinned)
    pinned = pipeline.PinnedRun.load(pinned.root)
    for step in (pipeline.train, pipeline.sample, pipeline.check, pipeline.gate, pipeline.publish):
        step(pinned)
    release_id = pipeline.finish(pinned).release_id
    run_dir = pinned.root
    figures = json.loads((run_dir / pipeline.FIGURES_FILE).read_text())["figures"]
    name, version = release_id.split("@")
    return spec, run_dir, figures, Path(spec.store.uri) / name / version


def _spellings(value: float) -> set[str]:
    """Ways a figure could be written, if distinctive (6+ significant digits: shares over
    a few thousand rows can coincide with a synthetic share at 4 digits)."""
    out = {repr(value)[:10], f"{value:.6f}", f"{value:.6g}", f"{value:.4%}"}
    return {s for s in out if sum(ch.isdigit() for ch in s.lstrip("0.-")) >= 6}


@pytest.fixture(scope="module")
def default_release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("datasheet")
    return _release(_spec(tmp))


def _spec(tmp: Path, **gate_extra) -> Path:
    import copy

    import yaml

    from tests.conftest import SMALL_COLUMNS, make_table

    data = tmp / "small.csv"
    make_table().to_csv(data, index=False)
    raw = {
        "name": "small",
        "source": {"kind": "csv", "path": str(data)},
        "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
        "privacy": {
            "epsilon": 3.0,
            "delta": 1e-6,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
            "noise": "seeded",
            "seed": 7,
        },
        "generator": {"name": "mst", "params": {"bins": 16}},
        "holdout": {"fraction": 0.3},
        "synthetic_rows": 2000,
        "target": "smoker",
        "gate": {
            "max_tvd_1way": 0.2,
            "max_tvd_2way": 0.3,
            "max_exact_copy_excess": 0.05,
            **gate_extra,
        },
        "workspace": {"path": str(tmp / "ws")},
        "store": {"uri": str(tmp / "store")},
    }
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_public_datasheet_holds_no_value_computed_from_the_real_rows(default_release):
    spec, _, figures, release = default_release
    text_json = (release / "datasheet.json").read_text()
    text_md = (release / "datasheet.md").read_text()
    manifest = json.loads((release / "manifest.json").read_text())
    assert {"datasheet.json", "datasheet.md"} <= set(manifest["files"])
    sheet = json.loads(text_json)
    assert "real_data_figures" not in sheet
    assert set(sheet) == {
        "format",
        "kind",
        "dataset",
        "privacy",
        "generator",
        "schema",
        "target",
        "synthetic",
        "validation",
    }
    for check in sheet["validation"]["checks"]:
        assert set(check) == {"name", "threshold", "bound", "passed", "reason", "description"}
    # Every value in it is a function of public inputs: the spec, the DP accounting, the
    # published synthetic table, and the verdict's pass/fail bits...
    synthetic = pd.read_parquet(release / "synthetic" / "small.parquet")
    assert sheet["synthetic"]["statistics"] == json.loads(
        json.dumps(synthetic_statistics(synthetic, spec.columns))
    )
    assert sheet["privacy"]["details"] == manifest["privacy"]["details"]
    assert sheet["privacy"]["audit"] == manifest["privacy"]["audit"]  # public: synthetic only
    assert sheet["schema"] == manifest["schema"]
    for check in sheet["validation"]["checks"]:
        attr = next((a for n, a, _ in THRESHOLD_CHECKS if n == check["name"]), None)
        stated = spec.privacy.epsilon if check["name"] == "privacy_audit" else None
        assert check["threshold"] == (stated if attr is None else getattr(spec.gate, attr))
        assert check["passed"] is True
    # ...and the Markdown is a rendering of the JSON.
    assert text_md == datasheet_markdown(sheet)
    # Belt and braces: no distinctive spelling of any real-data figure appears.
    checked = 0
    for name, value in figures.items():
        if not isinstance(value, float) or not math.isfinite(value):
            continue
        for spelling in _spellings(value):
            checked += 1
            assert spelling not in text_json and spelling not in text_md, (name, spelling)
    assert checked > 30, "the scan found too few distinctive figures to prove anything"
    assert sheet["privacy"]["epsilon"] == pytest.approx(3.0) and sheet["validation"]["passed"]
    names = [c["name"] for c in sheet["validation"]["checks"]]
    assert "tstr_gap" in names and "mia_auc" in names and "expectations" in names
    assert "differential privacy" in text_md and "| mia_auc |" in text_md


def test_internal_report_holds_figures_plots_and_data_docs(default_release):
    _, run_dir, figures, _ = default_release
    report = run_dir / "report"
    page = (report / "report.html").read_text()
    for section in (
        "Utility",
        "Privacy attacks",
        "Distances and copies",
        "Distributions",
        "Associations",
        "Train on synthetic, test on real",
        "Data Docs",
    ):
        assert section in page, section
    assert page.count("<svg") >= 5 and "<script" not in page
    assert "http://" not in page and "https://" not in page
    assert f"{figures['mia_auc']:.4g}" in page  # real-data figures are here, privately
    docs = report / "data_docs"
    assert (docs / "index.html").exists()
    assert stat.S_IMODE(docs.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in docs.rglob("*") if p.is_file())
    data = json.loads((report / "report.json").read_text())
    assert data["details"]["plots"]["association"]["columns"] == list(
        data["details"]["plots"]["distributions"]
    )


def test_opt_in_publishes_the_figures_under_a_warning(tmp_path):
    spec, _, figures, release = _release(_spec(tmp_path, publish_figures=True))
    sheet = json.loads((release / "datasheet.json").read_text())
    published = sheet["real_data_figures"]
    assert "NOT covered by differential privacy" in published["warning"]
    assert published["figures"]["mia_auc"] == pytest.approx(figures["mia_auc"])
    assert "real-data figures" in sheet["privacy"]["not_covered"]
    assert "Real-data figures (opt-in)" in (release / "datasheet.md").read_text()
    assert ReleaseStore(spec.store.uri).verify("small")


def test_build_datasheet_refuses_figures_without_the_opt_in(default_release):
    spec, run_dir, figures, release = default_release
    with pytest.raises(PrivacyError):
        build_datasheet(
            spec=spec,
            privacy={"epsilon": 1.0, "delta": 1e-6},
            verdict={},
            synthetic=pd.read_parquet(release / "synthetic" / "small.parquet"),
            figures=figures,
        )
    internal = json.loads((run_dir / "report" / "report.json").read_text())["verdict"]
    sheet = build_datasheet(
        spec=spec,
        privacy={"epsilon": 1.0, "delta": 1e-6},
        verdict=internal,
        synthetic=pd.read_parquet(release / "synthetic" / "small.parquet"),
    )
    assert all("figure" not in c for c in sheet["validation"]["checks"])


def test_verdict_markdown_lists_checks_and_never_a_figure():
    verdict = {
        "passed": False,
        "checks": [
            {
                "name": "mia_auc",
                "figure": 0.6123456,
                "threshold": 0.6,
                "bound": "max",
                "passed": False,
                "reason": "above the threshold",
            },
            {
                "name": "quality_score",
                "threshold": 0.7,
                "bound": "min",
                "passed": True,
                "reason": "at or above the threshold 0.8123456",
            },
            {"name": "x|y", "threshold": "0.9876543", "passed": True, "reason": None},
        ],
    }
    text = verdict_markdown(verdict)
    assert "# Release gate: FAILED" in text and "2 of 3 checks passed" in text
    assert "| mia_auc | at most | 0.6 | **FAIL** | above the threshold |" in text
    assert "0.612" not in text and "0.8123" not in text and "0.9876" not in text
    assert "x\\|y" in text
    assert verdict_markdown(None).startswith("# Release gate: FAILED")  # type: ignore[arg-type]
