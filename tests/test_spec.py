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
        "tables": {"small": {"columns": {
            "age": {"sdtype": "numerical"}, "score": {"sdtype": "numerical"},
            "colour": {"sdtype": "categorical"}, "city": {"sdtype": "categorical"},
            "smoker": {"sdtype": "boolean"},
        }}},
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
