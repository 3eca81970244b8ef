"""The command line: one clear line per bad input, non-zero exit, nothing charged."""

from __future__ import annotations

import pytest
import yaml

from synthrelease.cli import main
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import load_spec
from tests.test_pipeline import run_all


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_clear_line(err, expected):
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert expected in lines[0]
    assert "Traceback" not in err


def _ledger_entries(spec_path):
    spec = load_spec(spec_path)
    path = spec.workspace.path / "ledger.sqlite"
    if not path.exists():
        return []
    led = BudgetLedger.sqlite(path)
    try:
        return led.entries()
    finally:
        led.close()


def test_missing_spec(capsys, tmp_path):
    code, _, err = _run(capsys, "run", str(tmp_path / "nope.yaml"))
    assert code == 2
    _assert_one_clear_line(err, "spec file not found")


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"colour": 1}, "colour: unknown key"),
        (
            {"privacy": {"epsilon": 0, "delta": 1e-6, "budget": {"epsilon": 1, "delta": 1e-5}}},
            "privacy.epsilon",
        ),
        ({"source": {"kind": "csv", "path": "/nonexistent/x.csv"}}, "file not found"),
    ],
)
def test_bad_inputs_end_in_one_line_and_charge_nothing(capsys, spec_factory, change, expected):
    spec_path = spec_factory(**change)
    code, _, err = _run(capsys, "run", str(spec_path))
    assert code == 2
    _assert_one_clear_line(err, expected)
    assert not list((spec_path.parent / "store").glob("*"))


def test_column_missing_from_table(capsys, spec_factory):
    raw = yaml.safe_load(spec_factory().read_text())
    raw["schema"]["columns"]["height"] = {"type": "numerical", "lower": 0, "upper": 3}
    path = spec_factory(schema=raw["schema"])
    code, _, err = _run(capsys, "run", str(path))
    assert code == 2
    _assert_one_clear_line(err, "missing from the table: ['height']")
    assert _ledger_entries(path) == []


def test_exhausted_budget_refuses_to_start(capsys, spec_factory):
    path = spec_factory(
        privacy={
            "epsilon": 6.0,
            "delta": 1e-6,
            "noise": "seeded",
            "seed": 1,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
        }
    )
    run_all(path)
    code, _, err = _run(capsys, "run", str(path))
    assert code == 3
    _assert_one_clear_line(err, "budget of table 'small' would be exceeded")
    assert [e.status for e in _ledger_entries(path)] == ["committed"]
    code, out, _ = _run(capsys, "budget", "show", "--spec", str(path))
    assert code == 0 and "small" in out and "6" in out


def test_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = _run(capsys, "--debug", "run", str(tmp_path / "nope.yaml"))
    assert code == 2 and "Traceback" in err


def test_spec_draft_and_check(capsys, tmp_path, small_csv):
    out = tmp_path / "drafted.yaml"
    code, stdout, _ = _run(
        capsys,
        "spec",
        "draft",
        str(small_csv),
        "--name",
        "small",
        "--target",
        "smoker",
        "-o",
        str(out),
    )
    assert code == 0 and "review" in stdout
    code, stdout, _ = _run(capsys, "spec", "check", str(out))
    assert code == 0 and "valid spec for 'small'" in stdout


def test_consumer_commands(capsys, spec_factory, tmp_path):
    path = spec_factory()
    spec = load_spec(path)
    release_id, _ = run_all(path)
    store = spec.store.uri
    code, out, _ = _run(capsys, "releases", "list", "--store", store)
    assert code == 0 and f"{release_id} (latest)" in out
    code, out, _ = _run(capsys, "releases", "verify", release_id, "--store", store)
    assert code == 0 and "match their manifest hashes" in out
    code, out, _ = _run(
        capsys, "pull", "small@latest", "-o", str(tmp_path / "pulled"), "--store", store
    )
    assert code == 0 and (tmp_path / "pulled" / "small").is_dir()
    code, _, err = _run(capsys, "pull", "../etc", "-o", str(tmp_path / "x"), "--store", store)
    assert code == 2
    _assert_one_clear_line(err, "invalid release name")
    code, _, err = _run(capsys, "releases", "show", "nothere", "--store", store)
    assert code == 2
    _assert_one_clear_line(err, "no release of 'nothere'")


def test_dask_needs_the_prefect_engine(capsys, spec_factory):
    spec_path = spec_factory()
    code, _, err = _run(capsys, "run", str(spec_path), "--engine", "direct", "--dask")
    assert code == 2
    _assert_one_clear_line(err, "--dask runs the Prefect flow 'release-dask'")
    assert _ledger_entries(spec_path) == []
