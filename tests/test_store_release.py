"""A demo-like release through the pipeline steps, published to the local store and to an
S3 server, with a downstream model; consumers pull and load the table and the model; a
tampered file is refused; the firewall stops a copied real row and a real-data model;
an unreachable or unwritable store fails the run with the budget recorded as spent.

One run (train, sample, check, gate) is shared by the module; each test publishes it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import yaml

import synthrelease
from synthrelease import pipeline
from synthrelease.cli import main
from synthrelease.errors import FirewallError, IntegrityError, StoreError
from synthrelease.ledger import BudgetLedger
from synthrelease.spec import ReleaseSpec, load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import SMALL_COLUMNS, make_table
from tests.s3server import S3Server, clear_s3fs_cache, s3  # noqa: F401 - fixture

MODELS = [
    {
        "name": "smoker",
        "kind": "classifier",
        "target": "smoker",
        "algorithm": "logistic_regression",
    },
    {
        "name": "age",
        "kind": "regressor",
        "target": "age",
        "features": ["colour", "score"],
        "params": {"n_estimators": 10, "max_depth": 6},
    },
]


@dataclasses.dataclass
class Run:
    pinned: pipeline.PinnedRun

    @property
    def spec(self) -> ReleaseSpec:
        return self.pinned.spec

    @property
    def paths(self):
        return self.pinned.paths

    def with_store(self, uri: str, **publish: bool) -> pipeline.PinnedRun:
        """The pinned run with another store (what a test publishes to)."""
        store = self.spec.store.model_copy(update={"uri": uri})
        update = {"store": store}
        if publish:
            update["publish"] = self.spec.publish.model_copy(update=publish)
        spec = self.spec.model_copy(update=update)
        spec._digest = self.spec.digest()
        return dataclasses.replace(self.pinned, spec=spec)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    make_table().to_csv(tmp / "small.csv", index=False)
    raw = {
        "name": "small",
        "source": {"kind": "csv", "path": str(tmp / "small.csv")},
        "schema": {"columns": copy.deepcopy(SMALL_COLUMNS)},
        "target": "smoker",
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
        "gate": {"max_tvd_1way": 0.2, "max_tvd_2way": 0.3, "max_exact_copy_excess": 0.05},
        "workspace": {"path": str(tmp / "ws")},
        "store": {"uri": str(tmp / "store"), "retention": {"keep_last": 5}},
        "models": MODELS,
    }
    (tmp / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(tmp / "spec.yaml")
    pipeline.preflight(spec)
    pinned = pipeline.pin(spec, pipeline.new_run_id())
    pipeline.reserve(pinned)
    pinned = pipeline.PinnedRun.load(pinned.root)
    for step in (pipeline.train, pipeline.sample, pipeline.check, pipeline.gate):
        step(pinned)
    yield Run(pinned)
    pipeline.cleanup(pinned)


def _store_files(store: ReleaseStore) -> list[str]:
    return [p for p in store.fs.find(store.root) if p.rsplit("/", 1)[-1] != "index.html"]


def test_local_release_with_models_is_consumable(run, tmp_path, capsys):
    release_id = pipeline.publish(run.pinned)
    name, version = release_id.split("@")
    store = ReleaseStore(run.spec.store.uri)
    m = store.manifest(name, version)
    assert [x["name"] for x in m["models"]] == ["smoker", "age"]
    provenance = {rel: a["provenance"] for rel, a in m["artifacts"].items()}
    assert (
        provenance.items()
        >= {
            "README.md": "metadata",
            "synthetic/small.parquet": "synthetic",
            **{
                f"models/{n}/{f}": p
                for n in ("smoker", "age")
                for f, p in (
                    ("README.md", "metadata"),
                    ("card.json", "metadata"),
                    ("model.onnx", "trained-on-synthetic"),
                )
            },
        }.items()
    )
    assert set(provenance) == set(m["files"])  # every file carries its provenance
    assert {
        p for rel, p in provenance.items() if not rel.startswith(("models/", "synthetic/"))
    } == {"metadata"}
    assert m["publication"]["generator"] is False
    df = synthrelease.load(name, store=store.uri)
    assert df.shape == (2000, 5)
    clf = synthrelease.load_model(name, model="smoker", store=store.uri)
    assert clf.card["training_data"]["release"] == release_id
    assert (clf.predict(df) == df["smoker"].map({True: "true", False: "false"})).mean() > 0.6
    assert synthrelease.load_model(name, model="age", store=store.uri).predict(df).shape == (2000,)
    # the holdout figures exist, privately; no release file carries them
    internal = Path(run.paths.root / "models.json").read_text()
    assert '"accuracy"' in internal and '"r2"' in internal
    blob = b"".join(store.fs.cat_file(p) for p in _store_files(store))
    assert b'"accuracy"' not in blob and b"majority_class" not in blob
    assert release_id in store.fs.cat_file(store._p("index.html")).decode()
    # pull through the CLI, then tamper: verify, pull and load refuse it
    assert main(["pull", release_id, "-o", str(tmp_path / "out"), "--store", store.uri]) == 0
    assert (tmp_path / "out" / name / version / "models" / "smoker" / "model.onnx").exists()
    onnx_path = Path(store.uri) / name / version / "models" / "age" / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes()[:-1] + b"\x00")
    assert main(["releases", "verify", release_id, "--store", store.uri]) == 2
    assert "does not match its manifest hash" in capsys.readouterr().err
    with pytest.raises(IntegrityError):
        synthrelease.load_model(name, model="age", store=store.uri)
    with pytest.raises(IntegrityError):
        store.pull(name, version, tmp_path / "again")


def test_s3_release_with_generator_opt_in(run, s3: S3Server, tmp_path):
    spec = run.with_store(s3.uri("pipeline"), generator=True)
    release_id = pipeline.publish(spec)
    spec = spec.spec
    store = ReleaseStore(spec.store.uri)
    name, version = release_id.split("@")
    m = store.manifest(name)
    assert m["release_id"] == release_id
    assert m["publication"]["generator_files"] == [
        "generator/arrays.npz",
        "generator/generator.json",
    ]
    assert m["artifacts"]["generator/arrays.npz"] == {"provenance": "dp-generator"}
    assert store.verify(name) == m["files"]
    assert synthrelease.load(name, store=spec.store.uri).shape == (2000, 5)
    model = synthrelease.load_model(name, model="smoker", version=version, store=spec.store.uri)
    assert model.kind == "classifier"
    assert (
        main(["pull", f"{name}@latest", "-o", str(tmp_path / "o"), "--store", spec.store.uri]) == 0
    )
    assert (tmp_path / "o" / name / version / "generator" / "generator.json").exists()


def test_firewall_stops_a_copied_real_row(run):
    paths = run.paths
    spec = run.with_store(str(paths.root.parent.parent.parent / "copy-store"))
    original = paths.synthetic.read_bytes()
    real = pd.read_parquet(paths.train)  # the sensitive split, read by the test only
    row = real[real["score"].notna() & (real["score"].abs() < 5)].iloc[[0]]
    row = row.assign(smoker=row["smoker"].astype(str).str.lower() == "true")  # as sampled
    try:
        leaky = pd.concat([pd.read_parquet(paths.synthetic), row], ignore_index=True)
        leaky.to_parquet(paths.synthetic, index=False)
        with pytest.raises(FirewallError, match="identical to sensitive rows"):
            pipeline.publish(spec)
    finally:
        paths.synthetic.write_bytes(original)
    assert ReleaseStore(spec.spec.store.uri).releases() == []


def test_firewall_stops_a_model_trained_on_real_rows(run, monkeypatch):
    import synthrelease.models.release as release_models

    paths = run.paths
    spec = run.with_store(str(paths.root.parent.parent.parent / "model-store"))
    honest = release_models.train_on_table

    def on_real_rows(table_path, model, features, target):  # a bug: the real split is used
        trained = honest(paths.train, model, features, target)
        claimed = honest(table_path, model, features, target).table_sha256
        return dataclasses.replace(trained, table_sha256=claimed)

    monkeypatch.setattr(release_models, "train_on_table", on_real_rows)
    with pytest.raises(FirewallError, match="not reproducible from the synthetic table"):
        pipeline.publish(spec)
    assert ReleaseStore(spec.spec.store.uri).releases() == []


def test_unreachable_or_unwritable_store_fails_the_run_as_spent(run, s3: S3Server, monkeypatch):
    paths = run.paths
    blocker = paths.root.parent.parent.parent / "blocker"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(StoreError, match="cannot (read|publish to) release store"):
        pipeline.publish(run.with_store(str(blocker / "store")))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clear_s3fs_cache()
    try:
        with pytest.raises(StoreError, match="EndpointConnectionError") as err:
            pipeline.publish(run.with_store("s3://releases/down"))
    finally:
        monkeypatch.undo()
        clear_s3fs_cache()
    assert pipeline.fail(run.pinned, err.value) == "spent"
    ledger = BudgetLedger.sqlite(run.spec.workspace.path / "ledger.sqlite")
    try:
        assert [e.status for e in ledger.entries("small")] == ["spent"]
    finally:
        ledger.close()
    assert ReleaseStore(s3.uri("down")).releases() == []
