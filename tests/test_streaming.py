"""Tables of any size (issue 16): one-pass ingestion into a code store, counts chunk by
chunk, bounded samples, chunked sampling.

- bucketed ingestion (a source larger than one chunk) splits exactly as the in-memory
  split does: the same coins, the same parts, the same codes, samples that are the whole
  part (in order) when it fits and a uniform subset when it does not;
- sources are read in chunks (CSV, a partitioned Parquet dataset) to the same rows as a
  whole read;
- exact marginals counted from the code store, chunk by chunk and through compression
  maps, equal the in-memory counts; MST and AIM fitted from the code store equal the
  same fits on the rows (seeded noise: the same report and the same synthetic rows);
- a release of a table several times larger than the chunk size holds memory to a
  bound that does not grow with the rows;
- the sample step writes ``synthetic_rows`` rows chunk by chunk.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthrelease.generators import build_generator
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal import data as marginal_data
from synthrelease.generators.marginal.data import ExactMarginals, encode_rows
from synthrelease.generators.noise import NoiseSource
from synthrelease.pipeline import fit as fit_step
from synthrelease.private import ingest as ingest_module
from synthrelease.private.domain import enforce_frame
from synthrelease.private.ingest import ingest
from synthrelease.private.rowscan import row_facts
from synthrelease.private.sources import load_table, read_chunks
from synthrelease.private.table import SensitiveTable
from synthrelease.private.workspace import bernoulli_holdout
from synthrelease.run import release
from synthrelease.spec import CsvSource, GeneratorSpec, ParquetSource, Schema, load_spec
from tests.conftest import SMALL_COLUMNS, make_table

KEY = bytes(range(16))
COLUMNS = Schema.model_validate({"columns": SMALL_COLUMNS}).columns


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    frame = make_table(n, seed)
    frame = pd.concat([frame, frame.iloc[: n // 10]], ignore_index=True)  # duplicates
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _csv(tmp_path: Path, frame: pd.DataFrame) -> CsvSource:
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return CsvSource(kind="csv", path=path)


def _ingest(tmp_path: Path, source, name: str, *, chunk_rows: int, sample_rows: int = 10**6):
    root = tmp_path / name
    disc = Discretiser(COLUMNS, default_bins=8)
    out = ingest(
        source,
        COLUMNS,
        root=root,
        label="t",
        discretiser=disc,
        fraction=0.3,
        key=KEY,
        sample_rows=sample_rows,
        sample_paths=(root / "train.parquet", root / "holdout.parquet"),
        keep_rows=True,
        chunk_rows=chunk_rows,
    )
    return out, root, disc


def _rows(frame: pd.DataFrame) -> list[tuple]:
    """The rows as a sorted list (nulls of any kind alike)."""
    return sorted(map(tuple, _text(frame).to_numpy()))


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), "<null>").astype(str)


def test_bucketed_ingestion_splits_exactly_as_the_in_memory_split(tmp_path, monkeypatch):
    spill = ingest_module._Buckets._spill
    monkeypatch.setattr(ingest_module, "BUCKETS", 16)  # 16 buckets of ~200 rows
    frame = _table(3000)
    source = _csv(tmp_path, frame)
    whole, root_w, disc = _ingest(tmp_path, source, "whole", chunk_rows=10**6)
    spilled = []
    monkeypatch.setattr(
        ingest_module._Buckets,
        "_spill",
        lambda self, c, start: spilled.append(start) or spill(self, c, start),
    )
    chunked, root_c, _ = _ingest(tmp_path, source, "chunked", chunk_rows=100)
    assert len(spilled) == len(chunked.train.files()) == 33  # every chunk went to the buckets
    assert len(whole.train.files()) == 1 and not (root_w / "work").exists()
    # the same coins as the in-memory function the split always used
    enforced, _ = enforce_frame(load_table(source, COLUMNS, label="t").reveal(), COLUMNS)
    mask = bernoulli_holdout(enforced, fraction=0.3, key=KEY)
    for part, expected in ((whole.train, ~mask), (whole.holdout, mask)):
        got = pd.concat([t.reveal() for t in part.chunks()], ignore_index=True)
        assert _rows(got) == _rows(enforced[expected])
    for a, b in ((whole.train, chunked.train), (whole.holdout, chunked.holdout)):
        rows_a = pd.concat([t.reveal() for t in a.chunks()], ignore_index=True)
        rows_b = pd.concat([t.reveal() for t in b.chunks(rows=97)], ignore_index=True)
        assert _rows(rows_a) == _rows(rows_b)
    # samples that hold the whole part keep the part's rows in the source's order
    for name in ("train", "holdout"):
        a = pd.read_parquet(root_w / f"{name}.parquet")
        b = pd.read_parquet(root_c / f"{name}.parquet")
        pd.testing.assert_frame_equal(_text(a), _text(b))
    expected_train = enforced[~mask].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        _text(pd.read_parquet(root_w / "train.parquet")), _text(expected_train)
    )
    # the code stores hold the same training rows
    sizes = list(disc.sizes.values())
    for clique in [(0,), (1, 2), (0, 3, 4)]:
        a = ExactMarginals(whole.codes, sizes).counts(clique)
        b = ExactMarginals(chunked.codes, sizes).counts(clique)
        assert np.array_equal(a, b)
    total = ExactMarginals(whole.codes, sizes).counts(())
    assert total[0] == (~mask).sum() == whole.rows[0] == chunked.rows[0]
    # the row scan's facts: the rows' own, stored in row order, per part
    for side, part in enumerate((chunked.train, chunked.holdout)):
        expected = row_facts(enforced[mask if side else ~mask], COLUMNS)
        stored = list(part.facts(rows=211))
        assert part.has_facts and len(stored) > 1
        for name, values in expected.items():
            assert np.array_equal(np.concatenate([f[name] for f in stored]), values), name


def test_a_part_larger_than_the_sample_is_sampled_uniformly(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_module, "BUCKETS", 16)
    frame = _table(4000, seed=1)
    source = _csv(tmp_path, frame)
    out, root, _ = _ingest(tmp_path, source, "s", chunk_rows=300, sample_rows=1000)
    sample = pd.read_parquet(root / "train.parquet")
    train = pd.concat([t.reveal() for t in out.train.chunks()], ignore_index=True)
    assert len(sample) == 1000 < len(train)
    assert set(_rows(sample)) <= set(_rows(train))
    # uniform: the sample's mean age is within 4 standard errors of the part's
    se = train["age"].std() / np.sqrt(1000)
    assert abs(sample["age"].mean() - train["age"].mean()) < 4 * se
    # and not the first rows of the source
    assert _rows(sample) != _rows(train.iloc[:1000])


def test_sources_read_in_chunks_equal_a_whole_read(tmp_path):
    frame = _table(2000, seed=2)
    folder = tmp_path / "dataset"
    for colour, rows in frame.groupby("colour"):  # hive partitions by a declared column
        sub = folder / f"colour={colour}"
        sub.mkdir(parents=True)
        for i, start in enumerate(range(0, len(rows), 500)):
            piece = rows.iloc[start : start + 500].drop(columns=["colour"])
            piece.to_parquet(sub / f"part-{i}.parquet", index=False)
    columns = dict(COLUMNS)
    parquet = ParquetSource(kind="parquet", path=folder)
    chunks = list(read_chunks(parquet, columns, rows=300))
    assert len(chunks) >= 7 and all(len(c) <= 300 for c in chunks)
    whole = pd.concat(chunks, ignore_index=True)
    assert list(whole.columns) == list(columns)
    assert _rows(whole) == _rows(frame.astype({"smoker": str}))
    csv = _csv(tmp_path, frame)
    parts = pd.concat(list(read_chunks(csv, columns, rows=333)), ignore_index=True)
    assert _rows(parts) == _rows(load_table(csv, columns, label="t").reveal())


def test_exact_marginals_count_the_code_store_chunk_by_chunk(tmp_path, monkeypatch):
    frame = _table(3000, seed=3)
    out, _, disc = _ingest(tmp_path, _csv(tmp_path, frame), "c", chunk_rows=10**6)
    train = pd.concat([t.reveal() for t in out.train.chunks()], ignore_index=True)
    sizes = list(disc.sizes.values())
    memory = ExactMarginals(encode_rows(SensitiveTable(train, label="t"), disc), sizes)
    monkeypatch.setattr(marginal_data, "CHUNK_ROWS", 128)  # many chunks
    stored = ExactMarginals(out.codes, sizes)
    cliques = [(0, 1), (2, 4), (0, 2, 3)]
    stored.prefetch(cliques)
    for clique in [*cliques, (1,), (0, 3)]:
        assert np.array_equal(memory.counts(clique), stored.counts(clique))
    maps = [np.minimum(np.arange(s), 2) for s in sizes]  # a compression: codes > 2 merged
    memory, stored = memory.compressed(maps), stored.compressed(maps)
    assert stored.sizes == memory.sizes == tuple(min(s, 3) for s in sizes)
    for clique in [*cliques, (4,)]:
        assert np.array_equal(memory.counts(clique), stored.counts(clique))


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_mst_and_aim_fit_the_code_store_as_they_fit_the_rows(tmp_path, monkeypatch, name):
    frame = _table(3000, seed=4)
    out, _, disc = _ingest(tmp_path, _csv(tmp_path, frame), "g", chunk_rows=10**6)
    train = pd.concat([t.reveal() for t in out.train.chunks()], ignore_index=True)
    monkeypatch.setattr(marginal_data, "CHUNK_ROWS", 500)
    params = {"bins": 8} if name == "mst" else {"bins": 8, "rounds": 6, "iters": 50}
    spec = {"name": name, "params": params}
    results = []
    for table in (SensitiveTable(train, label="t"), out.codes):
        generator = build_generator(
            GeneratorSpec.model_validate(spec), COLUMNS, epsilon=2.0, delta=1e-6
        )
        assert generator.reads_codes
        report = generator.fit(table, noise=NoiseSource.seeded(11))
        sample = generator.sample(500, rng=np.random.default_rng(5))
        results.append((report.to_dict(), sample))
    assert results[0][0] == results[1][0]
    pd.testing.assert_frame_equal(results[0][1], results[1][1])


def test_a_release_larger_than_a_chunk_holds_memory_flat(tmp_path, monkeypatch):
    """Peak traced memory (numpy, pandas and Python allocations) of ingestion and an MST
    fit at 10,000 and 40,000 rows, read 1,000 rows a chunk, split in 8 buckets and
    counted 1,000 a chunk: within 20%. (Before the reader
    kept its chunks in a list and the samples their frames, it grew 3x.)"""
    monkeypatch.setattr(ingest_module, "BUCKETS", 8)
    monkeypatch.setattr(marginal_data, "CHUNK_ROWS", 1_000)
    peaks = []
    for n in (10_000, 40_000):
        folder = tmp_path / str(n)
        folder.mkdir()
        source = _csv(folder, make_table(n, seed=n))
        out_root = folder / "run"
        disc = Discretiser(COLUMNS, default_bins=16)
        tracemalloc.start()
        try:
            ingested = ingest(
                source,
                COLUMNS,
                root=out_root,
                label="t",
                discretiser=disc,
                fraction=0.2,
                key=KEY,
                sample_rows=500,
                sample_paths=(out_root / "train.parquet", out_root / "holdout.parquet"),
                keep_rows=False,
                chunk_rows=1_000,
            )
            generator = build_generator(
                GeneratorSpec(name="mst", params={"bins": 16}), COLUMNS, epsilon=1.0, delta=1e-6
            )
            generator.fit(ingested.codes, noise=NoiseSource.seeded(1))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0], peaks


def test_the_sample_step_writes_chunk_by_chunk(spec_factory, monkeypatch):
    monkeypatch.setattr(fit_step, "SAMPLE_CHUNK", 700)
    path = spec_factory(synthetic_rows=2500)
    summary = release(path)
    assert summary.passed
    spec = load_spec(path)
    runs = list((spec.workspace.path / "runs").glob("*/synthetic.parquet"))
    assert len(runs) == 1
    file = pq.ParquetFile(runs[0])
    assert file.metadata.num_rows == 2500
    assert file.metadata.num_row_groups == 4  # 700, 700, 700, 400
