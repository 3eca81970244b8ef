"""Downstream models: spec validation, input encoding, deterministic ONNX export, cards."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from synthrelease.errors import ModelError, SpecError
from synthrelease.models.card import render_card
from synthrelease.models.features import Feature, encode_column, encode_inputs
from synthrelease.models.release import train_release_models
from synthrelease.models.runtime import ReleasedModel
from synthrelease.models.train import reproduce
from synthrelease.spec import load_spec, parse_spec
from tests.conftest import SMALL_COLUMNS, make_table


def _spec(models):
    return parse_spec(
        {
            "name": "small",
            "source": {"kind": "csv", "path": "unused.csv"},
            "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
            "privacy": {"epsilon": 1, "delta": 1e-6, "budget": {"epsilon": 2, "delta": 1e-5}},
            "generator": {"name": "mst"},
            "synthetic_rows": 1500,
            "models": models,
        }
    )


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "m", "kind": "classifier", "target": "nope"}, "target 'nope' is not a column"),
        ({"name": "m", "kind": "classifier", "target": "age"}, "categorical or boolean target"),
        ({"name": "m", "kind": "regressor", "target": "colour"}, "numerical target"),
        (
            {"name": "m", "kind": "regressor", "target": "age", "algorithm": "logistic_regression"},
            "does not make a regressor",
        ),
        (
            {"name": "m", "kind": "classifier", "target": "smoker", "params": {"n_jobs": 8}},
            "unknown parameter 'n_jobs'",
        ),
        (
            {
                "name": "m",
                "kind": "classifier",
                "target": "smoker",
                "params": {"n_estimators": 10**6},
            },
            "between 1 and 500",
        ),
        ({"name": "../m", "kind": "classifier", "target": "smoker"}, "models.0.name"),
        (
            {"name": "m", "kind": "classifier", "target": "smoker", "features": ["smoker"]},
            "must not include the target",
        ),
    ],
)
def test_bad_model_declarations_are_refused(spec_factory, model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(spec_factory(models=[model]))


def test_model_names_must_be_distinct(spec_factory):
    m = {"name": "m", "kind": "classifier", "target": "smoker"}
    with pytest.raises(SpecError, match="names must be distinct"):
        load_spec(spec_factory(models=[m, m]))


def test_input_encoding_per_declared_type():
    cat = Feature("city", "categorical", ("a", "b"), "other")
    assert encode_column(pd.Series(["a", "zz", None]), cat)[:, 0].tolist() == ["a", "other", ""]
    flags = encode_column(pd.Series([True, None, "false"], dtype=object), Feature("f", "boolean"))
    assert np.isnan(flags[1, 0]) and flags[[0, 2], 0].tolist() == [1.0, 0.0]
    days = encode_column(pd.Series(["1970-01-02", None]), Feature("d", "datetime"))
    assert days[0, 0] == 1.0 and np.isnan(days[1, 0])
    nums = encode_column(pd.Series([1, None], dtype="Int64"), Feature("n", "numerical"))
    assert nums.dtype == np.float32 and np.isnan(nums[1, 0])
    with pytest.raises(ModelError, match="lacks model input columns"):
        encode_inputs(pd.DataFrame({"x": [1]}), [cat])


def test_models_are_deterministic_portable_and_carded(tmp_path):
    spec = _spec(
        [
            {"name": "smoker", "kind": "classifier", "target": "smoker"},
            {
                "name": "score",
                "kind": "regressor",
                "target": "score",
                "algorithm": "ridge",
                "features": ["age", "colour", "city"],
            },
        ]
    )
    table = tmp_path / "synthetic.parquet"
    make_table(1500, seed=11).to_parquet(table, index=False)
    files = train_release_models(
        spec,
        table_rel="synthetic/small.parquet",
        table_path=table,
        out_dir=tmp_path / "m",
        release_id="small@20261128T101500Z",
        privacy={"epsilon": 1.0, "delta": 1e-6},
    )
    assert sorted(files) == [
        f"models/{n}/{f}"
        for n in ("score", "smoker")
        for f in ("README.md", "card.json", "model.onnx")
    ]
    assert {a.provenance.value for rel, a in files.items() if rel.endswith(".onnx")} == {
        "trained-on-synthetic"
    }
    card = json.loads(files["models/smoker/card.json"].path.read_text())
    onnx_bytes = files["models/smoker/model.onnx"].path.read_bytes()
    assert reproduce(card, table) == onnx_bytes  # the firewall's check
    assert onnx_bytes[:2] != b"\x80\x04"  # not a pickle
    assert card["training_data"] == {
        "release": "small@20261128T101500Z",
        "table": "synthetic/small.parquet",
        "sha256": card["training_data"]["sha256"],
        "rows": 1500,
        "provenance": "synthetic",
    }
    assert "post-processing" in card["privacy"]["guarantee"]
    assert not {"figures", "evaluation", "metrics", "accuracy", "auc"} & set(card)  # real-data
    # figures stay in the workspace
    assert "Not for decisions about individuals" in render_card(card)
    model = ReleasedModel(onnx_bytes, card)
    frame = make_table(400, seed=12)
    predicted = model.predict(frame)
    truth = np.where(frame["smoker"], "true", "false")
    assert (predicted == truth).mean() > 0.7  # colour -> smoker is learnable
    reg_card = json.loads(files["models/score/card.json"].path.read_text())
    reg = ReleasedModel(files["models/score/model.onnx"].path.read_bytes(), reg_card)
    assert reg.predict(frame).shape == (400,)
    with pytest.raises(ModelError, match="no probabilities"):
        reg.predict_proba(frame)


def test_single_class_target_is_a_clear_error(tmp_path):
    spec = _spec(
        [
            {
                "name": "m",
                "kind": "classifier",
                "target": "smoker",
                "algorithm": "logistic_regression",
            }
        ]
    )
    frame = make_table(200, seed=1)
    frame["smoker"] = True
    table = tmp_path / "t.parquet"
    frame.to_parquet(table, index=False)
    with pytest.raises(ModelError, match="single class"):
        train_release_models(
            spec,
            table_rel="synthetic/t.parquet",
            table_path=table,
            out_dir=tmp_path / "m",
            release_id="small@x",
            privacy={"epsilon": 1.0, "delta": 1e-6},
        )


def test_inputs_read_values_as_the_domain_check_and_copy_checks_do():
    """Features go through synthrelease.values: the same spellings, the same bucket."""
    flags = encode_column(
        pd.Series([" Yes ", "N", "1.0", "maybe", ""], dtype=object), Feature("f", "boolean")
    )[:, 0]
    assert flags[:3].tolist() == [1.0, 0.0, 1.0] and np.isnan(flags[3:]).all()
    nums = encode_column(
        pd.Series([" 3 ", "3.0", "x", np.inf], dtype=object), Feature("n", "numerical")
    )[:, 0]
    assert nums[:2].tolist() == [3.0, 3.0] and np.isnan(nums[2]) and np.isinf(nums[3])
    cat = Feature("c", "categorical", ("a", "3"), "other")
    labels = encode_column(pd.Series(["a", 3, "", "other", "A", np.nan], dtype=object), cat)[:, 0]
    assert labels.tolist() == ["a", "3", "", "other", "other", ""]
    # an empty category set maps nothing (as before the shared normaliser)
    assert encode_column(pd.Series(["q"]), Feature("c", "categorical", (), "other"))[0, 0] == "q"
    days = encode_column(pd.Series(["1970-01-02T01:00:00+01:00"]), Feature("d", "datetime"))
    assert days[0, 0] == 1.0
