"""Ingestion in shards (issue 16): a Parquet dataset of several files is read one shard a
file, in this process, in a local process pool or on a Dask cluster, and every output
(the code store, the row scan's facts, the split, the samples, the counts) is the same
wherever the shards ran, and the split is the in-memory split of the whole table, coin
for coin. A release whose shards ran on a 2-worker Dask cluster publishes the same
manifest and spends the same budget as one that ran in one process."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import Client, LocalCluster

from synthrelease import run
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.data import ExactMarginals
from synthrelease.pipeline import executors
from synthrelease.private.domain import enforce_frame
from synthrelease.private.ingest import Ingested, ingest
from synthrelease.private.parts import SIDES
from synthrelease.private.rowscan import row_facts
from synthrelease.private.sources import load_table, shards
from synthrelease.private.workspace import bernoulli_holdout
from synthrelease.spec import ParquetSource, Schema, load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import SMALL_COLUMNS, make_table

KEY = bytes(range(16, 32))
COLUMNS = Schema.model_validate({"columns": SMALL_COLUMNS}).columns


def _dataset(folder: Path, n: int = 4000) -> Path:
    """``n`` rows (a tenth of them repeated) as a hive-partitioned dataset: one folder a
    colour, files of at most 400 rows."""
    frame = make_table(n, 5)
    frame = pd.concat([frame, frame.iloc[: n // 10]], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    for colour, rows in frame.groupby("colour"):
        sub = folder / f"colour={colour}"
        sub.mkdir(parents=True)
        for i, start in enumerate(range(0, len(rows), 400)):
            piece = rows.iloc[start : start + 400].drop(columns=["colour"])
            piece.to_parquet(sub / f"part-{i}.parquet", index=False)
    return folder


def _ingest(source: ParquetSource, root: Path, executor) -> Ingested:
    return ingest(
        source,
        COLUMNS,
        root=root,
        label="t",
        discretiser=Discretiser(COLUMNS, default_bins=8),
        fraction=0.25,
        key=KEY,
        sample_rows=300,
        sample_paths=(root / "train.parquet", root / "holdout.parquet"),
        keep_rows=False,
        chunk_rows=150,  # several chunks a shard: every shard spills to the buckets
        executor=executor,
    )


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of 2 worker processes (one for the module: it takes seconds)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def _outputs(out: Ingested, root: Path) -> dict[str, object]:
    marginals = ExactMarginals(out.codes, Discretiser(COLUMNS, default_bins=8).sizes.values())
    facts = {
        side: {k: np.concatenate([f[k] for f in part.facts()]) for k in ("key",)}
        for side, part in (("train", out.train), ("holdout", out.holdout))
    }
    return {
        "rows": out.rows,
        "counts": json.dumps(out.counts, sort_keys=True),
        "sides": (root / SIDES).read_bytes(),
        "codes": [marginals.counts(c).tolist() for c in [(0, 1), (2, 3, 4)]],
        "facts": {side: v["key"].tolist() for side, v in facts.items()},
        "samples": [pd.read_parquet(root / f"{p}.parquet") for p in ("train", "holdout")],
    }


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    for name in a:
        if name == "samples":
            for x, y in zip(a[name], b[name]):  # type: ignore[call-overload]
                pd.testing.assert_frame_equal(x, y)
        else:
            assert a[name] == b[name], name


def test_shards_give_the_same_outputs_in_order_in_a_pool_and_on_dask(tmp_path, cluster):
    source = ParquetSource(kind="parquet", path=_dataset(tmp_path / "data"))
    assert shards(source) >= 8
    here = _outputs(_ingest(source, tmp_path / "here", None), tmp_path / "here")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=executors._silence) as pool:
        pooled = _outputs(_ingest(source, tmp_path / "pool", pool), tmp_path / "pool")
    _same(here, pooled)
    with Client(cluster) as client:
        dask = _outputs(
            _ingest(source, tmp_path / "dask", client.get_executor(pure=False)), tmp_path / "dask"
        )
    _same(here, dask)
    # the split is the whole table's in-memory split, coin for coin, in the shards' order
    enforced, _ = enforce_frame(load_table(source, COLUMNS, label="t").reveal(), COLUMNS)
    mask = bernoulli_holdout(enforced, fraction=0.25, key=KEY)
    assert here["rows"] == (int((~mask).sum()), int(mask.sum()))
    for side, rows in (("train", enforced[~mask]), ("holdout", enforced[mask])):
        assert here["facts"][side] == row_facts(rows, COLUMNS)["key"].tolist()  # type: ignore[index]
    # nothing of the shards is left behind
    assert not (tmp_path / "here" / "work").exists()


def test_a_release_on_a_dask_cluster_matches_the_single_process_release(
    tmp_path, monkeypatch, cluster
):
    data = _dataset(tmp_path / "data")

    def release(name: str) -> tuple[dict, dict, str]:
        raw = {
            "name": "sharded",
            "source": {"kind": "parquet", "path": str(data)},
            "schema": {"columns": SMALL_COLUMNS},
            "privacy": {
                "epsilon": 3.0,
                "delta": 1e-6,
                "budget": {"epsilon": 10.0, "delta": 1e-5},
                "noise": "seeded",
                "seed": 11,
            },
            "generator": {"name": "mst", "params": {"bins": 16}},
            "holdout": {"fraction": 0.3},
            "synthetic_rows": 1500,
            "gate": {"max_tvd_1way": 0.3, "max_tvd_2way": 0.4},
            "workspace": {"path": str(tmp_path / name / "ws")},
            "store": {"uri": str(tmp_path / name / "store")},
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        summary = run.release(str(path))
        spec = load_spec(path)
        store = ReleaseStore(spec.store.uri)
        manifest = store.manifest(*summary.release_id.split("@"))
        synthetic = next((tmp_path / name / "store").rglob("*.parquet"))
        return manifest, {"epsilon": summary.epsilon, "delta": summary.delta}, _digest(synthetic)

    monkeypatch.setenv(executors.INGEST_WORKERS, "1")
    alone = release("alone")
    monkeypatch.setenv(executors.DASK_ADDRESS, cluster.scheduler_address)
    on_dask = release("dask")
    assert on_dask[1] == alone[1]  # the budget spent
    assert on_dask[2] == alone[2]  # the synthetic rows, byte for byte
    assert _public(on_dask[0]) == _public(alone[0])  # the synthetic table's digest too
    assert any(name.endswith(".parquet") for name in _public(alone[0])["files"])


def _digest(path: Path) -> str:
    return hashlib.sha256(pd.read_parquet(path).to_csv(index=False).encode()).hexdigest()


def _public(manifest: dict) -> dict:
    """The manifest without what names the run: its id and time, and the digests of
    what holds them or the spec's own paths (the README, the specs)."""
    out = json.loads(json.dumps(manifest, sort_keys=True, default=str))
    for key in ("created", "release_id", "version", "spec_sha256", "run_spec_sha256"):
        out.pop(key)
    out["files"].pop("README.md")
    return out


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_worker_count_is_refused(monkeypatch, value):
    monkeypatch.setenv(executors.INGEST_WORKERS, value)
    with pytest.raises(Exception, match=executors.INGEST_WORKERS):
        executors.workers()
