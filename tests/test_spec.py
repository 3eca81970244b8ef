"""Spec validation: every bad input ends in one SpecError naming the key, never a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from synthrelease.errors import SpecError
from synthrelease.spec import CategoricalColumn, NumericalColumn, load_spec, parse_spec
from tests.conftest import ADULT_SPEC


def _raw(spec_factory, **overrides):
    return yaml.safe_load(Path(spec_factory(**overrides)).read_text())


def test_demo_spec_loads_with_all_top_level_keys():
    spec = load_spec(ADULT_SPEC)
    assert spec.name == "adult"
    assert spec.privacy.epsilon == 1.0 and spec.privacy.noise == "secure"
    assert spec.generator.name == "mst"
    assert spec.source.path.is_absolute() and spec.source.path.exists()
    assert isinstance(spec.columns["age"], NumericalColumn)
    assert isinstance(spec.columns["income"], CategoricalColumn)
    assert spec.target == "income"


def test_spec_hash_does_not_depend_on_where_the_spec_lies(tmp_path):
    copy = tmp_path / "elsewhere" / "adult.yaml"
    copy.parent.mkdir()
    copy.write_text(ADULT_SPEC.read_text())
    assert load_spec(copy).digest() == load_spec(ADULT_SPEC).digest()
    changed = tmp_path / "changed.yaml"
    changed.write_text(ADULT_SPEC.read_text().replace("epsilon: 1.0 ", "epsilon: 2.0 "))
    assert load_spec(changed).digest() != load_spec(ADULT_SPEC).digest()


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r.update(colour="blue"), "colour: unknown key"),
        (lambda r: r.pop("privacy"), "privacy: required key is missing"),
        (lambda r: r["privacy"].update(epsilon=0), "privacy.epsilon"),
        (lambda r: r["privacy"].update(epsilon=-1.0), "privacy.epsilon"),
        (lambda r: r["privacy"].update(epsilon=".nan"), "privacy.epsilon"),
        (lambda r: r["privacy"].update(epsilon=20.0), "lifetime budget"),
        (lambda r: r["privacy"].update(noise="seeded", seed=None), "seed"),
        (lambda r: r.update(name="../etc"), "name"),
        (lambda r: r.update(name="a/b"), "name"),
        (lambda r: r.update(target="nope"), "target"),
        (lambda r: r.update(synthetic_rows=0), "synthetic_rows"),
        (lambda r: r["generator"].update(name="ctgan"), "generator.name"),
        (lambda r: r["schema"]["columns"]["age"].update(lower=200), "lower must be smaller"),
        (lambda r: r["schema"]["columns"]["colour"].update(categories=["x", "x"]), "distinct"),
        (lambda r: r["schema"]["columns"]["colour"].update(type="text"), "schema.columns.colour"),
        (lambda r: r["source"].update(kind="excel"), "source"),
        (lambda r: r["holdout"].update(fraction=1.5), "holdout.fraction"),
    ],
)
def test_bad_specs_raise_one_error_naming_the_key(spec_factory, mutate, expected):
    raw = _raw(spec_factory)
    mutate(raw)
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert expected in str(info.value)


def test_error_does_not_echo_the_bad_value(spec_factory):
    raw = _raw(spec_factory)
    raw["privacy"]["epsilon"] = "SECRET-VALUE-123"
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert "SECRET-VALUE-123" not in str(info.value)


def test_missing_and_garbled_files(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(scalar)


def test_sdv_metadata_gives_types(spec_factory, tmp_path):
    raw = _raw(spec_factory)
    meta = {
        "METADATA_SPEC_VERSION": "V1",
        "tables": {
            "small": {
                "columns": {
                    "age": {"sdtype": "numerical"},
                    "score": {"sdtype": "numerical"},
                    "colour": {"sdtype": "categorical"},
                    "city": {"sdtype": "categorical"},
                    "smoker": {"sdtype": "boolean"},
                }
            }
        },
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    for col in raw["schema"]["columns"].values():
        col.pop("type")
    raw["schema"]["sdv_metadata"] = "meta.json"
    spec = parse_spec(raw, base=tmp_path)
    assert spec.columns["smoker"].type == "boolean"
    assert spec.columns["colour"].categories == ("red", "green", "blue")


def test_sdv_metadata_with_unsupported_sdtype(spec_factory, tmp_path):
    raw = _raw(spec_factory)
    (tmp_path / "meta.json").write_text(json.dumps({"columns": {"age": {"sdtype": "id"}}}))
    raw["schema"]["sdv_metadata"] = "meta.json"
    with pytest.raises(SpecError, match="'age' has sdtype 'id'"):
        parse_spec(raw, base=tmp_path)


@pytest.mark.parametrize("column", ["age", "colour", "smoker"])
def test_refuse_rule_is_a_spec_error_naming_the_key_and_the_alternatives(spec_factory, column):
    raw = _raw(spec_factory)
    raw["schema"]["columns"][column]["out_of_domain"] = "refuse"
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    message = str(info.value)
    assert f"schema.columns.{column}." in message and ".out_of_domain: 'refuse'" in message
    assert "'clip'" in message and "'drop'" in message and "'other' bucket" in message


def test_effective_out_of_domain_rules(spec_factory):
    raw = _raw(spec_factory)
    raw["schema"]["columns"]["score"]["out_of_domain"] = "drop"
    spec = parse_spec(raw)
    assert {n: c.policy for n, c in spec.columns.items()} == {
        "age": "clip",
        "score": "drop",
        "colour": "drop",
        "city": "other",
        "smoker": "drop",
    }


def test_provenance_defaults_and_values(spec_factory):
    spec = load_spec(spec_factory())
    assert {c.provenance for c in spec.columns.values()} == {"declared"}
    assert spec.provenance.synthetic_rows == "declared" and spec.provenance.delta == "declared"
    assert spec.provenance.domain_estimate is None
    assert spec.not_dp == {"columns": [], "values": []}
    raw = _raw(spec_factory)
    raw["schema"]["columns"]["age"]["provenance"] = "drafted"
    raw["schema"]["columns"]["colour"]["provenance"] = "dp"
    raw["provenance"] = {
        "synthetic_rows": "drafted",
        "delta": "default",
        "domain_estimate": {"epsilon": 0.5, "delta": 1e-9, "run_id": "draft-1"},
    }
    spec = parse_spec(raw)
    assert spec.columns["age"].provenance == "drafted" and spec.columns["colour"].provenance == "dp"
    assert spec.not_dp == {"columns": ["age"], "values": ["synthetic_rows"]}
    assert spec.provenance.domain_estimate.epsilon == 0.5


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["schema"]["columns"]["age"].update(provenance="guessed"), "provenance"),
        (lambda r: r.update(provenance={"synthetic_rows": "rows"}), "provenance.synthetic_rows"),
        (lambda r: r.update(provenance={"colour": "dp"}), "provenance.colour: unknown key"),
        (
            lambda r: r.update(
                provenance={"domain_estimate": {"epsilon": 0, "delta": 0, "run_id": "x"}}
            ),
            "provenance.domain_estimate.epsilon",
        ),
    ],
)
def test_bad_provenance_is_refused_naming_the_key(spec_factory, mutate, expected):
    raw = _raw(spec_factory)
    mutate(raw)
    with pytest.raises(SpecError, match=expected.replace(".", r"\.")):
        parse_spec(raw)


def test_an_undeclared_domain_is_dp_by_default(spec_factory):
    raw = _raw(spec_factory, generator={"name": "dpsgd", "params": {}})
    raw["privacy"]["domain_share"] = 0.1
    del raw["schema"]["columns"]["age"]["lower"]
    del raw["schema"]["columns"]["colour"]["categories"]
    spec = parse_spec(raw)
    assert spec.columns["age"].provenance == "dp" and spec.columns["colour"].provenance == "dp"
    assert spec.columns["colour"].policy == "other"
    raw["schema"]["columns"]["age"]["provenance"] = "declared"
    with pytest.raises(SpecError, match="needs a declared domain"):
        parse_spec(raw)
