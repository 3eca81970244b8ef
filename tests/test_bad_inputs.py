"""A corpus of bad inputs, run through the CLI (`synthrelease run --engine direct`).

Each must end with a typed error and one clear line, a non-zero exit, no traceback, no
sensitive value in the message, nothing published, and nothing charged to the budget
unless the data was touched by a DP mechanism (none of these gets that far).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthrelease.cli import main
from synthrelease.ledger import BudgetLedger
from tests.conftest import SMALL_COLUMNS, make_table

MARKER = "SECRET-7f3a"  # planted in bad data: must never appear in an error
NUMBER = "987654321"


def base_raw(tmp: Path) -> dict[str, Any]:
    data = tmp / "data.csv"
    if not data.exists():
        make_table(300).to_csv(data, index=False)
    return {
        "name": "bad",
        "source": {"kind": "csv", "path": str(data)},
        "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
        "privacy": {
            "epsilon": 1.0,
            "delta": 1e-6,
            "budget": {"epsilon": 5.0, "delta": 1e-5},
            "noise": "seeded",
            "seed": 3,
        },
        "generator": {"name": "mst", "params": {"bins": 8}},
        "holdout": {"fraction": 0.3},
        "synthetic_rows": 500,
        "workspace": {"path": str(tmp / "ws")},
        "store": {"uri": str(tmp / "store")},
    }


def write_table(tmp: Path, mutate: Callable[[pd.DataFrame], pd.DataFrame], name="t.csv") -> str:
    df = mutate(make_table(300).astype(object))
    path = tmp / name
    df.to_csv(path, index=False)
    return str(path)


def _set(path: str, value: Any) -> Callable[[dict, Path], None]:
    keys = path.split(".")

    def apply(raw: dict, tmp: Path) -> None:
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return apply


def _drop(path: str) -> Callable[[dict, Path], None]:
    keys = path.split(".")

    def apply(raw: dict, tmp: Path) -> None:
        node = raw
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return apply


def _data(
    mutate: Callable[[pd.DataFrame], pd.DataFrame], **schema_changes
) -> Callable[[dict, Path], None]:
    def apply(raw: dict, tmp: Path) -> None:
        raw["source"]["path"] = write_table(tmp, mutate)
        for col, changes in schema_changes.items():
            raw["schema"]["columns"][col].update(changes)

    return apply


def _at(df: pd.DataFrame, col: str, value: Any, row: int = 5) -> pd.DataFrame:
    df.loc[row, col] = value
    return df


def _raw_file(text: str | bytes) -> Callable[[dict, Path], None]:
    def apply(raw: dict, tmp: Path) -> None:
        path = tmp / "raw.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        raw["source"]["path"] = str(path)

    return apply


HEADER = "age,score,colour,city,smoker\n"
S = "schema.columns"
CASES: dict[str, tuple[Callable[[dict, Path], None], int, str]] = {
    # unknown keys, at every level
    **{
        f"unknown key at {lvl or 'top'}": (
            _set(f"{lvl}.colour_{i}" if lvl else f"colour_{i}", 1),
            2,
            "unknown key",
        )
        for i, lvl in enumerate(
            [
                "",
                "source",
                "privacy",
                "privacy.budget",
                "generator",
                "holdout",
                "workspace",
                "store",
                f"{S}.age",
                f"{S}.colour",
            ]
        )
    },
    "unknown generator param": (_set("generator.params.depth", 3), 2, "unknown parameter"),
    # missing keys
    **{
        f"missing {k}": (_drop(k), 2, "required key is missing")
        for k in [
            "name",
            "source",
            "schema",
            "privacy",
            "generator",
            "synthetic_rows",
            "privacy.epsilon",
            "privacy.delta",
            "privacy.budget",
            "privacy.budget.epsilon",
            "source.path",
            "schema.columns",
            "generator.name",
        ]
    },
    "missing lower": (_drop(f"{S}.age.lower"), 2, "schema.columns.age"),
    "missing upper": (_drop(f"{S}.age.upper"), 2, "schema.columns.age"),
    "missing source kind": (_drop("source.kind"), 2, "source"),
    "missing column type": (_drop(f"{S}.age.type"), 2, "schema.columns.age"),
    # wrong types
    **{
        f"epsilon as {v!r}": (_set("privacy.epsilon", v), 2, "privacy.epsilon")
        for v in ["abc", [1], {"a": 1}, None]
    },
    **{
        f"synthetic_rows {v!r}": (_set("synthetic_rows", v), 2, "synthetic_rows")
        for v in [1.5, "many", -3, 0, 10**12]
    },
    "name as a number": (_set("name", 123), 2, "name"),
    "columns as a list": (_set(f"{S}", ["age"]), 2, "schema.columns"),
    "categories as text": (_set(f"{S}.colour.categories", "red"), 2, "categories"),
    "lower as text": (_set(f"{S}.age.lower", "low"), 2, "lower"),
    "nullable as text": (_set(f"{S}.age.nullable", "maybe"), 2, "nullable"),
    "params as a list": (_set("generator.params", [1]), 2, "generator.params"),
    "bins below 2": (_set("generator.params.bins", 1), 2, "bins"),
    "bins as text": (_set("generator.params.bins", "x"), 2, "bins"),
    "column bins 0": (_set(f"{S}.age.bins", 0), 2, "bins"),
    "holdout fraction 1": (_set("holdout.fraction", 1.0), 2, "holdout.fraction"),
    "holdout fraction 0": (_set("holdout.fraction", 0), 2, "holdout.fraction"),
    "clip on a categorical": (_set(f"{S}.colour.out_of_domain", "clip"), 2, "clip"),
    "unknown out_of_domain rule": (_set(f"{S}.age.out_of_domain", "ignore"), 2, "out_of_domain"),
    "duplicate categories": (_set(f"{S}.colour.categories", ["red", "red"]), 2, "distinct"),
    "lower above upper": (_set(f"{S}.age.lower", 500), 2, "lower must be smaller"),
    "infinite bound": (_set(f"{S}.age.upper", math.inf), 2, "finite"),
    "unknown column type": (_set(f"{S}.age.type", "text"), 2, "schema.columns.age"),
    "target not a column": (_set("target", "height"), 2, "target"),
    # privacy parameters
    **{
        f"epsilon {v}": (_set("privacy.epsilon", v), 2, "privacy.epsilon")
        for v in [0, -1.0, math.nan, math.inf, 1e9]
    },
    **{
        f"delta {v}": (_set("privacy.delta", v), 2, "privacy.delta")
        for v in [0, 1.0, -1e-6, 0.5, math.nan]
    },
    "budget epsilon 0": (_set("privacy.budget.epsilon", 0), 2, "privacy.budget.epsilon"),
    "budget delta 2": (_set("privacy.budget.delta", 2), 2, "privacy.budget.delta"),
    "epsilon above budget": (_set("privacy.epsilon", 6.0), 2, "lifetime budget"),
    "seeded without seed": (_drop("privacy.seed"), 2, "seed"),
    "secure with seed": (_set("privacy.noise", "secure"), 2, "seed"),
    "unknown noise": (_set("privacy.noise", "dev-urandom"), 2, "privacy.noise"),
    # dataset names
    **{
        f"name {v!r}": (_set("name", v), 2, "name")
        for v in ["../etc", "a/b", "..", "a b", "", ".hidden", "x" * 65, "naïve", "a\\b"]
    },
    # generators
    # every name the spec accepts is built now (issue 4): AIM's params are checked instead
    "aim with an unknown parameter": (
        _set("generator", {"name": "aim", "params": {"bogus": 1}}),
        2,
        "unknown parameter",
    ),
    "aim workload with an unknown column": (
        _set("generator", {"name": "aim", "params": {"workload": [{"columns": ["nope"]}]}}),
        2,
        "unknown column",
    ),
    "unknown generator": (_set("generator.name", "ctgan"), 2, "generator.name"),
    # sources
    "missing file": (_set("source.path", "/nonexistent/x.csv"), 2, "file not found"),
    "directory, not a file": (
        lambda raw, tmp: raw["source"].update(path=str(tmp)),
        2,
        "not a file",
    ),
    "unknown source kind": (_set("source.kind", "excel"), 2, "source"),
    "sql url env not set": (
        _set("source", {"kind": "sql", "url_env": "NO_SUCH_ENV_7F3A", "table": "t"}),
        2,
        "NO_SUCH_ENV_7F3A is not set",
    ),
    "sql with table and query": (
        _set("source", {"kind": "sql", "url_env": "X", "table": "t", "query": "q"}),
        2,
        "exactly one",
    ),
    "sql bad env name": (
        _set("source", {"kind": "sql", "url_env": "bad name", "table": "t"}),
        2,
        "url_env",
    ),
    "empty file": (_raw_file(""), 2, "empty"),
    "non-utf-8 header": (
        _raw_file("\xe2ge,score,colour,city,smoker\n".encode("latin-1")),
        2,
        "utf-8",
    ),
    "duplicate column names": (
        _raw_file("age,age,score,colour,city,smoker\n1,1,0,red,a,true\n"),
        2,
        "duplicate",
    ),
    "column missing from table": (
        _raw_file("age,score,colour,smoker\n1,0,red,true\n"),
        2,
        "missing from the table",
    ),
    "extra column in table": (
        _raw_file(HEADER.strip() + ",ssn\n1,0,red,a,true,1\n"),
        2,
        "not declared in the spec",
    ),
    "holdout source missing": (
        _set("holdout", {"source": {"kind": "csv", "path": "/nonexistent/h.csv"}}),
        2,
        "file not found",
    ),
    "ledger url env not set": (
        _set("workspace.ledger_url_env", "NO_LEDGER_7F3A"),
        2,
        "NO_LEDGER_7F3A",
    ),
    "unusable store uri": (_set("store.uri", "nosuchproto7f3a://bucket/x"), 2, "release store"),
    # values outside the domain are handled row by row (clip / other / drop), never by
    # stopping the run: see ROW_BY_ROW below
    # the 'refuse' rule is gone: a spec that still says it is refused before any row is read
    **{
        f"refuse rule on {col}": (
            _data(lambda df: _at(df, "age", int(NUMBER)), **{col: {"out_of_domain": "refuse"}}),
            2,
            f"schema.columns.{col}.{kind}.out_of_domain: 'refuse' is no longer",
        )
        for col, kind in (
            ("age", "numerical"),
            ("score", "numerical"),
            ("colour", "categorical"),
            ("city", "categorical"),
            ("smoker", "boolean"),
        )
    },
    "refuse rule in capitals": (_set(f"{S}.age.out_of_domain", "REFUSE"), 2, "Use 'clip'"),
    "non-utf-8 body": (
        _raw_file(
            (HEADER + "30,0.5,red,a,true\n" * 50 + "31,0.5,r\xe9d,a,true\n").encode("latin-1")
        ),
        2,
        "utf-8",
    ),
}


def _entries(tmp: Path):
    ledger = tmp / "ws" / "ledger.sqlite"
    if not ledger.exists():
        return []
    led = BudgetLedger.sqlite(ledger)
    try:
        return led.entries()
    finally:
        led.close()


def _run_case(tmp: Path, raw: Any, capsys) -> tuple[int, str]:
    spec = tmp / "spec.yaml"
    spec.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, allow_unicode=True))
    code = main(["run", "--engine", "direct", str(spec)])
    _, err = capsys.readouterr()
    return code, err


def _assert_clean_failure(
    tmp: Path, code: int, err: str, expected_code: int, fragment: str
) -> None:
    assert code == expected_code, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err
    assert MARKER not in err and NUMBER not in err
    assert not (tmp / "store").exists() or not any((tmp / "store").rglob("*.parquet"))
    assert all(e.status == "voided" for e in _entries(tmp))


ROW_BY_ROW = {  # each was a run-level refusal once (one bit about the rows per run)
    "null in a non-nullable category": (
        lambda df: _at(df, "colour", None, row=5),
        "colour",
        "dropped",
    ),
    "mixed types in a numeric column": (lambda df: _at(df, "age", MARKER, row=6), "age", "dropped"),
    "NaN in a non-nullable number": (lambda df: _at(df, "age", math.nan, row=7), "age", "dropped"),
    "inf in a number": (lambda df: _at(df, "score", math.inf, row=8), "score", "clipped"),
    "-inf in a number": (lambda df: _at(df, "score", -math.inf, row=9), "score", "clipped"),
    "out of bounds": (lambda df: _at(df, "age", int(NUMBER), row=10), "age", "clipped"),
    "unknown category, no bucket": (
        lambda df: _at(df, "colour", MARKER, row=11),
        "colour",
        "dropped",
    ),
    "unknown category, other bucket": (lambda df: _at(df, "city", MARKER, row=12), "city", "other"),
    "not a boolean": (lambda df: _at(df, "smoker", MARKER, row=13), "smoker", "dropped"),
}


@pytest.mark.parametrize("column, value", [("age", None), ("colour", "10k")])
def test_a_column_wholly_outside_its_domain_drops_every_row_without_raising(
    tmp_path, column, value
):
    from synthrelease.private.sources import enforce_domain, load_table
    from synthrelease.spec import parse_spec

    raw = base_raw(tmp_path)
    fill = (
        (lambda df: df.assign(**{column: [f"{MARKER}-{i}" for i in range(len(df))]}))
        if value == "10k"
        else (lambda df: df.assign(**{column: value}))
    )
    raw["source"]["path"] = write_table(tmp_path, fill)
    spec = parse_spec(raw)
    enforced, counts = enforce_domain(
        load_table(spec.source, spec.columns, label="t"), spec.columns
    )
    assert enforced.reveal().shape[0] == 0 and counts[column]["dropped"] == 300


@pytest.mark.parametrize("case", sorted(ROW_BY_ROW))
def test_out_of_domain_values_are_handled_row_by_row(case, tmp_path):
    from synthrelease.private.sources import enforce_domain, load_table
    from synthrelease.spec import CsvSource, parse_spec

    mutate, column, what = ROW_BY_ROW[case]
    raw = base_raw(tmp_path)
    raw["source"]["path"] = write_table(tmp_path, mutate)
    spec = parse_spec(raw)
    clean = load_table(
        CsvSource(kind="csv", path=write_table(tmp_path, lambda df: df, "c.csv")),
        spec.columns,
        label="c",
    )
    _, baseline = enforce_domain(clean, spec.columns)  # city's 'd' goes to 'other' anyway
    table = load_table(spec.source, spec.columns, label="t")
    enforced, counts = enforce_domain(table, spec.columns)  # never raises on content
    assert counts[column][what] == baseline[column].get(what, 0) + 1
    assert {k: v for k, v in counts.items() if k != column} == {
        k: v for k, v in baseline.items() if k != column
    }
    frame = enforced.reveal()
    assert frame.shape[0] == 300 - (what == "dropped")
    assert MARKER not in frame.astype(str).to_numpy().ravel().tolist()


def test_out_of_domain_values_never_stop_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")  # the spec uses seeded noise
    raw = base_raw(tmp_path)
    mutations = [m for m, _, _ in ROW_BY_ROW.values()]

    def all_at_once(df):
        for m in mutations:
            df = m(df)
        return df

    raw["source"]["path"] = write_table(tmp_path, all_at_once)
    raw["privacy"]["epsilon"] = 3.0
    raw["gate"] = {
        "max_tvd_1way": 0.5,
        "max_tvd_2way": 0.6,
        "max_exact_copy_excess": 0.5,
        "max_inference_risk": 0.5,
        "max_near_copy_excess": 0.5,
        "max_mia_auc": 0.9,
    }
    code, err = _run_case(tmp_path, raw, capsys)
    assert code == 0, err
    assert MARKER not in err and NUMBER not in err
    assert [e.status for e in _entries(tmp_path)] == ["committed"]


# Table contents that stop a run once it has read the table: the run is charged (spent)
# and its public message does not depend on the rows (pipeline.finish / ChargedRunError).
TOUCHED = {
    "header only (empty table)": _raw_file(HEADER),
    "one-row table": _raw_file(HEADER + "30,0.5,red,a,true\n"),
    "ragged row": _raw_file(HEADER + "30,0.5,red,a,true\n" * 50 + "30,0.5,red,a,true,9,9\n"),
}


@pytest.mark.parametrize("case", sorted(TOUCHED))
def test_a_run_that_read_the_table_is_charged_and_says_nothing_of_it(
    case, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    raw = base_raw(tmp_path)
    TOUCHED[case](raw, tmp_path)
    code, err = _run_case(tmp_path, raw, capsys)
    assert code == 4, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "failed after reading the table" in lines[0], err
    assert "Traceback" not in err and MARKER not in err
    assert "too few rows" not in err and "cannot parse" not in err
    assert [e.status for e in _entries(tmp_path)] == ["spent"]


def test_corpus_is_large_enough():
    assert len(CASES) + len(YAML_CASES) >= 100


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys):
    mutate, expected_code, fragment = CASES[case]
    raw = base_raw(tmp_path)
    mutate(raw, tmp_path)
    code, err = _run_case(tmp_path, raw, capsys)
    _assert_clean_failure(tmp_path, code, err, expected_code, fragment)


YAML_CASES = {
    "unclosed bracket": "name: [unclosed\n",
    "tab indentation": "name: x\n\tsource: y\n",
    "nested colon": "a: b: c\n",
    "bad indentation": "name: x\n  source: y\n bad: z\n",
    "python tag": "--- !!python/object/apply:os.system ['true']\n",
    "binary garbage": "\x00\x01\x02name",
    "empty file": "",
    "a list": "- a\n- b\n",
    "a scalar": "just text\n",
    "unbalanced brace": "{name: x\n",
    "unterminated quote": "name: 'x\n",
    "duplicate anchor alias": "a: *nope\n",
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_malformed_yaml(case, tmp_path, capsys):
    code, err = _run_case(tmp_path, YAML_CASES[case], capsys)
    _assert_clean_failure(tmp_path, code, err, 2, "spec")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
    level=st.sampled_from(
        ["", "source", "privacy", "generator", "holdout", "gate", "workspace", "store"]
    ),
)
def test_any_unknown_key_is_refused(tmp_path_factory, capsys, key, level):
    from synthrelease import spec as m

    known = {
        "": set(m.ReleaseSpec.model_fields) | {"schema"},
        "source": set(m.CsvSource.model_fields) | set(m.SqlSource.model_fields),
        "privacy": set(m.Privacy.model_fields),
        "generator": set(m.GeneratorSpec.model_fields),
        "holdout": set(m.Holdout.model_fields),
        "gate": set(m.Gate.model_fields),
        "workspace": set(m.Workspace.model_fields),
        "store": set(m.Store.model_fields),
    }
    if key in known[level]:
        return
    tmp = tmp_path_factory.mktemp("k")
    raw = base_raw(tmp)
    node = raw.setdefault(level, {}) if level else raw
    node[key] = 1
    code, err = _run_case(tmp, raw, capsys)
    _assert_clean_failure(tmp, code, err, 2, "unknown key")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(
        st.text(max_size=8),
        st.lists(st.integers(), max_size=2),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not (0 < v <= 5)),
    )
)
def test_any_bad_epsilon_is_refused(tmp_path_factory, capsys, value):
    tmp = tmp_path_factory.mktemp("e")
    raw = base_raw(tmp)
    if isinstance(value, str):
        try:
            if 0 < float(value) <= 5:
                return
        except ValueError:
            pass
    if value is True:  # YAML/pydantic read true as 1.0, a valid epsilon
        return
    raw["privacy"]["epsilon"] = value
    code, err = _run_case(tmp, raw, capsys)
    _assert_clean_failure(tmp, code, err, 2, "privacy")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=200))
def test_random_bytes_as_spec(tmp_path_factory, capsys, blob):
    tmp = tmp_path_factory.mktemp("b")
    spec = tmp / "spec.yaml"
    spec.write_bytes(blob)
    code = main(["run", "--engine", "direct", str(spec)])
    _, err = capsys.readouterr()
    _assert_clean_failure(tmp, code, err, 2, "")


def test_exhausted_budget_exits_3_and_charges_nothing_more(tmp_path, capsys):
    raw = base_raw(tmp_path)
    raw["privacy"]["epsilon"] = 3.0
    raw["gate"] = {
        "max_tvd_1way": 0.5,
        "max_tvd_2way": 0.6,
        "max_exact_copy_excess": 0.5,
        # 210 training rows at epsilon 3: the privacy attacks (issue 5) measure a
        # real inference gain here; this test is about the budget, not the gate
        "max_inference_risk": 0.5,
        "max_near_copy_excess": 0.5,
        "max_mia_auc": 0.9,
    }
    code, err = _run_case(tmp_path, raw, capsys)
    assert code == 0, err
    code, err = _run_case(tmp_path, raw, capsys)
    assert code == 3 and "would be exceeded" in err and "Traceback" not in err
    assert [e.status for e in _entries(tmp_path)] == ["committed"]
