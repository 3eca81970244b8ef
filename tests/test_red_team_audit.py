"""Red-team review of the per-release privacy audit (issue 15).

The two-table test, for the audit's public figures: the same spec on neighbouring
tables A and B = A + one row, with the *same* synthetic table swapped in after the
sample step (as a DP output may well coincide on neighbours). The audit claims to read
only the synthetic table, the public domain and fresh coins (seeded here, so the coins
are the same for both runs): its figures must then be the same byte for byte, through
the sequential check step, the parallel ``audit`` part, the gate's audit bit and the
published manifest, datasheet and README. The fitted models differ (the test has teeth:
an audit that read the release's fitted state, the real table or the holdout would
differ between the two).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from synthrelease import pipeline, run
from synthrelease.errors import ChargedRunError
from synthrelease.generators import build_generator
from synthrelease.generators.base import columns_from_json
from synthrelease.generators.noise import NoiseSource
from synthrelease.pipeline import checks as checks_module
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import load_spec
from synthrelease.spec.sections import GeneratorSpec
from synthrelease.store import ReleaseStore
from tests.broken_generators import release_with_scaled_noise
from tests.conftest import SMALL_COLUMNS, make_table

SYNTHETIC_ROWS = 600


def _fixed_synthetic() -> pd.DataFrame:
    """A synthetic table in the generator's own output format, from a public table."""
    columns = columns_from_json(SMALL_COLUMNS)
    gen = build_generator(
        GeneratorSpec(name="mst", params={"bins": 8}), columns, epsilon=3.0, delta=1e-6
    )
    gen.fit(SensitiveTable(make_table(3000, seed=11), label="public"), noise=NoiseSource.seeded(1))
    return gen.sample(SYNTHETIC_ROWS, rng=np.random.default_rng(2))


GENERATORS = {
    "mst": {"name": "mst", "params": {"bins": 8}},
    "aim": {"name": "aim", "params": {"bins": 8}},
    "dpsgd": {
        "name": "dpsgd",
        "params": {"epochs": 2, "batch_size": 128, "hidden": [16], "bins": 8, "device": "cpu"},
    },
}


def _specs(base: Path, generator: dict[str, Any]) -> dict[str, Path]:
    a = make_table(800, seed=5)
    probe = a.iloc[[0]].assign(age=99, colour="blue", city="d", smoker=True, score=4.9)
    out = {}
    for name, frame in (("A", a), ("B", pd.concat([a, probe], ignore_index=True))):
        folder = base / name
        (folder / "data").mkdir(parents=True)
        frame.to_csv(folder / "data" / "t.csv", index=False)
        raw = {
            "name": "probe",
            "source": {"kind": "csv", "path": str(folder / "data" / "t.csv")},
            "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
            "privacy": {
                "epsilon": 1.0,
                "delta": 1e-6,
                "noise": "seeded",
                "seed": 3,
                "budget": {"epsilon": 5.0, "delta": 1e-5},
            },
            "generator": copy.deepcopy(generator),
            "holdout": {"fraction": 0.3},
            "synthetic_rows": SYNTHETIC_ROWS,
            "gate": {"max_tvd_1way": 1.0, "max_tvd_2way": 1.0, "max_exact_copy_excess": 1.0},
            "workspace": {"path": str(folder / "ws")},
            "store": {"uri": str(folder / "store")},
        }
        (folder / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        out[name] = folder
    return out


def _release_with(folder: Path, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Run the steps with ``synthetic`` swapped in after ``sample``; collect the audit's
    public outputs."""
    spec_path = folder / "spec.yaml"
    spec = load_spec(spec_path)
    out: dict[str, Any] = {}
    try:
        with run.opened(spec_path) as run_dir:
            run.reserve(run_dir)
            run.train(run_dir)
            run.sample(run_dir)
            pinned = pipeline.PinnedRun.load(run_dir)
            assert not pinned.failed, (pinned.root / "failure.txt").read_text()
            synthetic.to_parquet(pinned.paths.synthetic, index=False)
            out["model"] = (
                (pinned.paths.model / "arrays.npz").read_bytes()
                if (pinned.paths.model / "arrays.npz").exists()
                else sorted(p.name for p in pinned.paths.model.iterdir())
            )
            run.check(run_dir)  # sequential: the audit after the real-data checks
            audit = json.loads((pinned.root / pipeline.AUDIT_FILE).read_text())
            out["audit_sequential"] = {k: v for k, v in audit.items() if k != "seconds"}
            run.check_part(run_dir, "audit")  # the parallel flows' part
            part = json.loads((pinned.root / pipeline.CHECKS_DIR / "audit.json").read_text())
            out["audit_part"] = {k: v for k, v in part["audit"].items() if k != "seconds"}
            run.gate(run_dir)
            verdict = json.loads((pinned.root / pipeline.VERDICT_FILE).read_text())
            out["gate_bit"] = [c for c in verdict["checks"] if c["name"] == "privacy_audit"]
            run.publish(run_dir)
            summary = run.finish(run_dir)
    except ChargedRunError as exc:  # the gate refused: compare what we have
        out["refused"] = str(exc).split(". The reason")[0]
        return out
    name, version = summary.release_id.split("@")
    store = ReleaseStore(spec.store.uri)
    manifest = store.manifest(name, version)
    out["manifest_audit"] = manifest["privacy"]["audit"]
    root = Path(spec.store.uri) / name / version
    readme = (root / "README.md").read_text()
    out["readme_audit"] = [line for line in readme.splitlines() if "Privacy audit" in line]
    sheets = list(root.rglob("datasheet.json"))
    assert sheets, sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    out["datasheet_audit"] = json.loads(sheets[0].read_text())["privacy"]["audit"]
    md = list(root.rglob("datasheet.md"))[0].read_text()
    out["datasheet_md_audit"] = [line for line in md.splitlines() if "Privacy audit" in line]
    return out


@pytest.mark.filterwarnings("ignore")
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_the_audits_public_figures_are_the_same_on_neighbouring_tables(
    generator, tmp_path, monkeypatch
):
    synthetic = _fixed_synthetic()
    seen: list[pd.DataFrame] = []
    original = checks_module.audit_generator

    def spy(make, surrogate, **kwargs):
        seen.append(surrogate.copy())
        return original(make, surrogate, **kwargs)

    monkeypatch.setattr(checks_module, "audit_generator", spy)
    folders = _specs(tmp_path, GENERATORS[generator])
    results = {name: _release_with(folder, synthetic) for name, folder in folders.items()}
    a, b = results["A"], results["B"]
    # teeth: the two releases' fitted generators differ
    assert a["model"] != b["model"]
    # the audit saw exactly the synthetic table on disk, in both paths (nothing the
    # real-data checks ran before it changed it in place)
    assert len(seen) == 4
    for frame in seen:
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), synthetic)
    assert "error" not in a["audit_sequential"], a["audit_sequential"]
    for key in ("audit_sequential", "audit_part", "gate_bit"):
        assert a[key] == b[key], key
    assert a["audit_sequential"] == a["audit_part"]
    assert ("refused" in a) == ("refused" in b)
    for key in ("manifest_audit", "readme_audit", "datasheet_audit", "datasheet_md_audit"):
        assert a.get(key) == b.get(key), key
    assert "manifest_audit" in a, a.get("refused")  # published: the comparison is complete
    if "manifest_audit" in a:
        assert a["manifest_audit"]["ran"] is True
        assert "seconds" not in a["manifest_audit"]


BAD_AUDIT_FILES = {
    "missing": None,
    "malformed": b"{",
    "not utf-8": b"\xff\xfe\x00",
    "null": b"null",
    "a list": b"[]",
    "a string": b'"ok"',
    "empty object": b"{}",
    "NaN": b'{"epsilon_lower_bound": NaN}',
    "Infinity": b'{"epsilon_lower_bound": Infinity}',
    "a string bound": b'{"epsilon_lower_bound": "0.0"}',
    "a boolean bound": b'{"epsilon_lower_bound": false}',
    "an error": b'{"error": "AuditError", "epsilon_lower_bound": 0.0}',
    "above": b'{"epsilon_lower_bound": 3.0001}',
    "a directory": "dir",
}


@pytest.mark.filterwarnings("ignore")
def test_the_gate_fails_closed_on_every_broken_audit_file(spec_factory):
    """The real gate step (pipeline.gate) on a finished run's folder, with audit.json
    replaced by each broken state: the privacy_audit check and the verdict fail."""
    path = spec_factory()
    summary = run.release(path)
    spec = load_spec(path)
    pinned = pipeline.PinnedRun.load(pipeline.run_paths(spec, summary.run_id).root)
    audit_file = pinned.root / pipeline.AUDIT_FILE
    good = audit_file.read_bytes()
    assert pipeline.gate(pinned).passed  # the control: the run's own audit passes
    for name, content in BAD_AUDIT_FILES.items():
        if audit_file.is_dir():
            audit_file.rmdir()
        else:
            audit_file.unlink(missing_ok=True)
        if content == "dir":
            audit_file.mkdir()
        elif content is not None:
            audit_file.write_bytes(content)
        verdict = pipeline.gate(pinned)
        check = next(c for c in verdict.checks if c.name == "privacy_audit")
        assert not check.passed and not verdict.passed, name
    audit_file.rmdir()
    audit_file.write_bytes(good)
    # the parallel flows: an audit part that never ran leaves no audit.json behind
    audit_file.unlink()
    pipeline.merge_checks(pinned)  # no part file at all
    assert not audit_file.exists()
    assert not pipeline.gate(pinned).passed


def test_a_bound_the_audit_cannot_produce_fails_the_gate():
    """A bound below zero is not one the audit can produce (bound.py clamps at 0): a
    gate that fails closed should refuse it, as it refuses NaN or a string."""
    from synthrelease.spec import Gate
    from synthrelease.validators.gate import evaluate_gate

    verdict = evaluate_gate(
        figures={},
        expectations=None,
        gate=Gate(privacy_audit=True, expectations=False),
        audit={"epsilon_lower_bound": -1.0},
        epsilon=1.0,
    )
    check = next(c for c in verdict.checks if c.name == "privacy_audit")
    assert not check.passed


def test_the_audits_quiet_fit_does_not_silence_a_concurrent_checks_private_log():
    """The parallel flows run the audit part beside the real-data parts (threads of one
    process). quiet_fits raises the level of 'synthrelease.private' for the whole
    process, so a concurrent part's private INFO lines are lost while the audit fits."""
    import logging
    import threading

    from synthrelease.generators.base import quiet_fits

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("synthrelease.private.membership")
    handler = Keep(level=logging.DEBUG)
    base = logging.getLogger("synthrelease")
    before = base.level
    base.setLevel(logging.INFO)
    base.addHandler(handler)
    inside, done = threading.Event(), threading.Event()

    def audit_part() -> None:
        with quiet_fits():
            inside.set()
            done.wait(5)

    worker = threading.Thread(target=audit_part)
    worker.start()
    try:
        inside.wait(5)
        logger.info("membership: a private line of another check part")
    finally:
        done.set()
        worker.join()
        base.removeHandler(handler)
        base.setLevel(before)
    assert [r.getMessage() for r in records] == ["membership: a private line of another check part"]


@pytest.mark.filterwarnings("ignore")
def test_a_release_its_own_audit_refutes_is_never_published(spec_factory, monkeypatch):
    """The bug the audit exists for (every Gaussian 100x too small) with the spec's
    ``gate.privacy_audit: false``: the audit still runs and refutes the stated epsilon,
    yet the release is published, its README saying the bound is ABOVE the stated
    epsilon, and the manifest still stating the refuted epsilon."""
    path = release_with_scaled_noise(
        spec_factory,
        monkeypatch,
        gate={
            "max_tvd_1way": 0.2,
            "max_tvd_2way": 0.3,
            "max_exact_copy_excess": 0.05,
            "privacy_audit": False,
        },
    )
    try:
        summary = run.release(path)
    except ChargedRunError:
        return  # refused (for whatever reason): not published
    spec = load_spec(path)
    name, version = summary.release_id.split("@")
    audit = ReleaseStore(spec.store.uri).manifest(name, version)["privacy"]["audit"]
    assert not (audit["ran"] and audit["epsilon_lower_bound"] > audit["epsilon"]), audit
