"""Benchmark: DP-SGD from the code store costs the same per step at 1M and 100M rows
(issue 16), and its CPU threads do not stall on a busy machine.

    .venv/bin/python bench/bench_dpsgd_scale.py                    # 1M rows (20 s)
    .venv/bin/python bench/bench_dpsgd_scale.py --big              # and 100M (1.5 GB, 1 min)
    .venv/bin/python bench/bench_dpsgd_scale.py --rows 0 --stall   # threads vs load (5 min)

1. Cost per step. A code store of ``--rows`` rows (and 100M with ``--big``) of random
   codes over the domain of ``configs/adult-dpsgd.yaml`` (15 columns at 32 bins, uint8),
   split 80/20 by random bits as ingestion splits, written with ``CodeWriter`` under
   ``--data`` (default: a temporary folder, removed after; check its free space: 100M rows
   take 1.5 GB, plus 320 MB for the training rows' index while a fit runs). At each
   expected batch size (``q = batch / training rows`` on the public grid), the median
   over ``--steps`` steps of: *draw* (``poisson_indices``: a binomial size, then distinct
   rows), *gather* (the batch's codes from the memory-mapped files, ``RowAccess.gather``),
   *step* (a whole DP-SGD step of ``train_loop`` from the store: draw, gather, forward,
   per-row clipping, noise and Adam on the bench's MADE, hidden 256x256, 1 CPU thread),
   and, for comparison, *per-row coins*, the sampler this replaced (a float64 uniform per
   training row per step). *open* is paid once a fit: the training rows' index, written
   from the split's bits. The store is read warm (it was just written: the page cache
   holds it).
2. ``--stall``: a 2-epoch DP-SGD fit on Adult (batch 1024, hidden 256x256, bins 32: 64
   steps), each in a fresh process, with torch's default threads (one per core) and with
   the generator's default ``threads: 1``, with and without ``--busy`` CPU-bound
   processes beside it (``python -c "while True: pass"``); torch's default threads also
   with ``OMP_WAIT_POLICY=PASSIVE``. Wall and CPU seconds.

Every figure here comes from random codes or the PUBLIC demo table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "adult-dpsgd.yaml"
CHUNK = 1_000_000
HOLDOUT = 0.2


def adult_domain() -> tuple[dict[str, Any], list[str], list[int]]:
    from synthrelease.generators.domain import Discretiser
    from synthrelease.spec import load_spec

    columns = dict(load_spec(SPEC).columns)
    disc = Discretiser(columns, default_bins=32)
    return columns, disc.names, list(disc.sizes.values())


def write_store(root: Path, rows: int, names: list[str], sizes: list[int], seed: int = 0):
    """A store of ``rows`` random rows and an 80/20 split; returns the training part."""
    from synthrelease.private.codes import CodeWriter, Selection

    rng = np.random.default_rng(seed)
    writer = CodeWriter(root / "codes", names, sizes)
    with open(root / "sides.bits", "wb") as bits:
        for start in range(0, rows, CHUNK):  # CHUNK is a multiple of 8: whole bytes
            n = min(CHUNK, rows - start)
            writer.append(np.stack([rng.integers(0, k, n, dtype=np.uint8) for k in sizes]))
            bits.write(np.packbits(rng.random(n) < HOLDOUT, bitorder="little").tobytes())
    return writer.close(Selection(root / "sides.bits", 0))


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def step_costs(store: Any, sizes: list[int], batch: int, steps: int) -> dict[str, float]:
    import torch

    from synthrelease.generators.dpsgd.batches import StoreBatches
    from synthrelease.generators.dpsgd.model import MADE
    from synthrelease.generators.dpsgd.randomness import (
        StepRandomness,
        poisson_indices,
        public_sample_rate,
    )
    from synthrelease.generators.dpsgd.train import LoopConfig, train_loop

    cpu = torch.device("cpu")
    start = time.perf_counter()
    with store.random_access() as access:
        opened = time.perf_counter() - start
        n = access.count  # (random codes: a public count)
        q = public_sample_rate(batch / n)
        rnd = StepRandomness(cpu, seeds=[1, 2])
        draw = _median_ms(lambda: poisson_indices(n, q, rnd), steps)
        index = [poisson_indices(n, q, rnd) for _ in range(steps)]
        it = iter(index)
        gather = _median_ms(lambda: access.gather(next(it)), steps)
        coins = _median_ms(
            lambda: (torch.rand(n, dtype=torch.float64) < q).nonzero(), min(steps, 3)
        )
        marks: list[float] = []
        cfg = LoopConfig(
            steps=steps + 1,
            sample_rate=q,
            expected_batch=q * n,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            lr=3e-3,
            report_every=1,
        )
        model = MADE(sizes, hidden=(256, 256), generator=torch.Generator().manual_seed(0))
        train_loop(
            model,
            StoreBatches(access, cpu),
            cfg,
            randomness=StepRandomness(cpu, seeds=[3, 4]),
            on_progress=lambda info: marks.append(info.elapsed_s),
        )
        step = 1e3 * statistics.median(np.diff(marks))  # the first step (warm-up) dropped
    return {"n": n, "open_s": opened, "draw": draw, "gather": gather, "step": step, "coins": coins}


def scale(rows_list: list[int], batches: list[int], steps: int, data: Path | None) -> None:
    import torch

    torch.set_num_threads(1)
    _, names, sizes = adult_domain()
    print(
        f"\nDP-SGD per step from the code store: {len(sizes)} columns (Adult's domain at 32 "
        f"bins), {int(100 * (1 - HOLDOUT))}% training rows, medians over {steps} steps, "
        "1 CPU thread, warm page cache\n"
    )
    print(
        "| rows | training rows | expected batch | open (s, once) | draw (ms) | "
        "gather (ms) | DP-SGD step (ms) | per-row coins (ms, before) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in rows_list:
        base = Path(tempfile.mkdtemp(prefix="dpsgd-scale-", dir=data))
        try:
            start = time.perf_counter()
            store = write_store(base, rows, names, sizes)
            written = time.perf_counter() - start
            for batch in batches:
                c = step_costs(store, sizes, batch, steps)
                print(
                    f"| {rows:,} | {c['n']:,} | {batch:,} | {c['open_s']:.2f} | "
                    f"{c['draw']:.2f} | {c['gather']:.2f} | {c['step']:.0f} | {c['coins']:.0f} |",
                    flush=True,
                )
            print(f"(store of {rows:,} rows written in {written:.0f} s)", file=sys.stderr)
        finally:
            shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- threads
def stall_child(threads: int) -> None:
    """One fit (in a fresh process): JSON of wall and CPU seconds on stdout."""
    import torch

    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.sources import load_table
    from synthrelease.spec import load_spec

    spec = load_spec(SPEC)
    table = load_table(spec.source, spec.columns, label="adult")
    params = {"epochs": 2, "batch_size": 1024, "bins": 32, "device": "cpu", "threads": threads}
    gen = DPSGDGenerator(spec.columns, epsilon=3.0, delta=1e-6, params=params)
    torch_threads: list[int] = []
    wall, cpu = time.perf_counter(), time.process_time()
    gen.fit(
        table,
        noise=NoiseSource.seeded(0),
        progress=lambda _: torch_threads.append(torch.get_num_threads()),
    )
    out = {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "threads": torch_threads[-1],
    }
    print(json.dumps(out))


def stall(busy: int) -> None:
    configs = [
        ("torch default", 0, {}),
        ("torch default, OMP_WAIT_POLICY=PASSIVE", 0, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("threads: 1 (the default)", 1, {}),
    ]
    print(
        f"\nDP-SGD fit on Adult, 2 epochs (64 steps, batch 1024, hidden 256x256), "
        f"{os.cpu_count()} cores; beside it: nothing, or {busy} CPU-bound processes\n"
    )
    print("| torch threads | load | wall (s) | CPU (s) |")
    print("|---|---|---:|---:|")
    for load in (0, busy):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
        try:
            for label, threads, env in configs:
                done = subprocess.run(
                    [sys.executable, __file__, "--stall-child", str(threads)],
                    env={**os.environ, **env},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"| {label} ({r['threads']}) | {load} busy | {r['wall']:.1f} | "
                    f"{r['cpu']:.1f} |",
                    flush=True,
                )
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[1e6], help="0: skip")
    parser.add_argument("--big", action="store_true", help="also 100M rows (1.5 GB on disk)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--data", type=Path, default=None, help="folder for the stores")
    parser.add_argument("--stall", action="store_true", help="threads against a busy CPU")
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes (--stall)")
    parser.add_argument("--stall-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stall_child is not None:
        stall_child(args.stall_child)
        return 0
    rows = [int(r) for r in args.rows if r > 0] + ([100_000_000] if args.big else [])
    if rows:
        scale(rows, args.batches, args.steps, args.data)
    if args.stall:
        stall(args.busy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
