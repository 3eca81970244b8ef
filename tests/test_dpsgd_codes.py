"""DP-SGD from the code store: the same fit as from the rows, batches read by index
(a binomial size, then distinct uniform rows: the law of per-row coins) at O(batch) a
step, the part's rows mapped to the store's, and the CPU threads a fit runs on."""

from __future__ import annotations

import os
import time
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from scipy import stats

from synthrelease.errors import GeneratorError, PrivacyError
from synthrelease.generators.dpsgd.generator import DPSGDGenerator
from synthrelease.generators.dpsgd.randomness import (
    StepRandomness,
    poisson_indices,
    public_sample_rate,
)
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CodeWriter, Selection, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column
from tests.conftest import SMALL_COLUMNS, make_table

COLUMNS = {n: TypeAdapter(Column).validate_python(c) for n, c in SMALL_COLUMNS.items()}
FAST = {"epochs": 2, "batch_size": 128, "hidden": [16, 16], "bins": 8, "device": "cpu"}
ROWS = 1500
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gen(**params) -> DPSGDGenerator:
    return DPSGDGenerator(COLUMNS, epsilon=3.0, delta=1e-6, params={**FAST, **params})


def _store(root: Path, frame, side: np.ndarray | None, *, bins: int = 8) -> SensitiveCodes:
    """The store ingestion would write: every row's codes, and the training part's bits."""
    disc = _gen(bins=bins).discretiser
    assert disc is not None
    writer = CodeWriter(root / "codes", disc.names, list(disc.sizes.values()))
    writer.append(disc.encode(frame[disc.names]).to_numpy().T)
    if side is None:
        return writer.close()
    np.packbits(side.astype(np.uint8), bitorder="little").tofile(root / "sides.bits")
    return writer.close(Selection(root / "sides.bits", 0))


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[SensitiveTable, SensitiveCodes, Path]:
    """The training part of a split table, as rows and as the code store of all rows."""
    frame = make_table(ROWS, seed=5)
    side = np.random.default_rng(3).random(ROWS) < 0.3  # True: holdout
    root = tmp_path_factory.mktemp("store")
    store = _store(root, frame, side)
    train = SensitiveTable(frame[~side].reset_index(drop=True), label="train")
    return train, store, root / "codes"


# --------------------------------------------------------------------------- the fit
def test_a_fit_from_the_code_store_is_the_fit_from_the_rows(split):
    train, store, folder = split
    from_rows, from_store = _gen(), _gen()
    assert from_store.reads_codes
    torch.set_num_threads(2)  # a fit runs on its own ``threads`` and restores the caller's
    seen: list[int] = []
    try:
        rows_report = from_rows.fit(train, noise=NoiseSource.seeded(4))
        store_report = from_store.fit(
            store,
            noise=NoiseSource.seeded(4),
            progress=lambda _: seen.append(torch.get_num_threads()),
        )
        assert torch.get_num_threads() == 2 and set(seen) == {1}
    finally:
        torch.set_num_threads(1)
    assert store_report.to_dict() == rows_report.to_dict()  # the DP count, q, steps, noise
    for a, b in zip(from_rows.model.parameters(), from_store.model.parameters()):
        assert torch.equal(a, b)  # the same batches, step for step
    one = from_rows.sample(500, rng=np.random.default_rng(1))
    two = from_store.sample(500, rng=np.random.default_rng(1))
    assert one.equals(two)
    assert list(folder.glob("*.rows")) == []  # the fit's row index is gone


def test_a_store_of_another_discretisation_is_refused(tmp_path):
    store = _store(tmp_path, make_table(50), None, bins=16)
    with pytest.raises(GeneratorError, match="discretisation"):
        _gen().fit(store, noise=NoiseSource.seeded(0))


def test_undeclared_domains_still_read_the_rows(split):
    columns = dict(COLUMNS)
    columns["age"] = TypeAdapter(Column).validate_python({"type": "numerical", "integer": True})
    gen = DPSGDGenerator(columns, epsilon=3.0, delta=1e-6, params=FAST, domain_share=0.1)
    assert not gen.reads_codes
    with pytest.raises(GeneratorError, match="SensitiveTable"):
        gen.fit(split[1], noise=NoiseSource.seeded(0))


# --------------------------------------------------------------------------- the store by index
@pytest.mark.parametrize("select", [True, False])
def test_row_access_reads_the_parts_rows_by_index(tmp_path, select):
    frame = make_table(700, seed=2)
    side = np.random.default_rng(0).random(700) < 0.4
    store = _store(tmp_path, frame, side if select else None)
    whole = np.concatenate(list(store.reveal(rows=64)), axis=1)  # the part, chunk by chunk
    index = np.array([5, 0, whole.shape[1] - 1, 5, 17])
    with store.random_access() as access:
        assert access.count == whole.shape[1] and "rows hidden" in repr(access)
        assert np.array_equal(access.gather(index), whole[:, index])
        assert access.gather(np.empty(0, np.int64)).shape == (len(store.names), 0)
        with pytest.raises(IndexError):
            access.gather(np.array([access.count]))
        kept = list((tmp_path / "codes").glob("*.rows"))
        assert len(kept) == int(select) and all(p.stat().st_mode & 0o077 == 0 for p in kept)
    assert list((tmp_path / "codes").glob("*.rows")) == []  # the index goes with the access


def test_only_trusted_readers_get_random_access(split):
    sneaky = types.ModuleType("synthrelease.validators.sneaky")
    exec("def peek(c):\n    return c.random_access()\n", sneaky.__dict__)
    with pytest.raises(PrivacyError, match="not a trusted reader"):
        sneaky.peek(split[1])


# --------------------------------------------------------------------------- the sampler
def test_poisson_batches_have_the_law_of_per_row_coins():
    """Sizes Binomial(n, q); each row in with probability q; two rows in together with
    probability q^2 (distinct rows, not draws with replacement)."""
    n, q, draws = 60, public_sample_rate(0.1), 20_000
    rnd = StepRandomness(CPU, seeds=[11, 12])
    sizes = np.empty(draws, dtype=np.int64)
    hits = np.zeros(n)
    both = 0
    for i in range(draws):
        index = poisson_indices(n, q, rnd)
        assert np.all(np.diff(index) > 0) and (index.size == 0 or 0 <= index[0] < n)
        sizes[i] = index.size
        hits[index] += 1
        both += bool(np.isin([3, 40], index).all())
    observed = np.bincount(sizes, minlength=n + 1)
    expected = stats.binom.pmf(np.arange(n + 1), n, q) * draws
    keep = expected >= 5  # pool the sparse tails
    pooled_o = np.append(observed[keep], observed[~keep].sum())
    pooled_e = np.append(expected[keep], expected[~keep].sum())
    assert stats.chisquare(pooled_o, pooled_e).pvalue > 1e-4
    assert stats.chisquare(hits, np.full(n, hits.sum() / n)).pvalue > 1e-4
    assert abs(hits.mean() / draws - q) < 5 * np.sqrt(q * (1 - q) / (draws * n))
    assert abs(both / draws - q * q) < 5 * np.sqrt(q * q / draws)


def test_seeded_batches_repeat_and_secure_batches_are_rekeyed_every_step(monkeypatch):
    one, two = StepRandomness(CPU, seeds=[1, 2]), StepRandomness(CPU, seeds=[1, 2])
    q = public_sample_rate(0.3)
    assert all(
        np.array_equal(poisson_indices(500, q, one), poisson_indices(500, q, two)) for _ in range(5)
    )
    drawn: list[int] = []
    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda k: drawn.append(k) or real(k))
    rnd = StepRandomness(CPU, seeds=None)
    before = rnd.sampling
    drawn.clear()
    rnd.begin_step()
    assert rnd.sampling is not before and 16 in drawn  # a fresh 128-bit Philox key


def test_a_step_costs_the_batch_not_the_rows():
    """A billion rows, an expected batch of 1000: no per-row array (bounded memory)."""
    rnd = StepRandomness(CPU, seeds=[7, 8])
    n = 10**9
    q = public_sample_rate(1000 / n)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        sizes = [poisson_indices(n, q, rnd).size for _ in range(50)]
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # < 1 MB; a uniform per row would be 8 GB
    assert elapsed < 5.0
    assert 800 < np.mean(sizes) < 1200
