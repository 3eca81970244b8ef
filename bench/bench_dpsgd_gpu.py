"""Benchmark: DP-SGD throughput of ``dpsgd`` on a CUDA GPU, Adult resampled to 1M rows.

The encoded table stays on the GPU and Poisson batches are drawn there (no DataLoader).
Prints rows/s (rows processed per second of training, after a warm-up epoch) and peak
GPU memory for the same model with DP-SGD and without DP, with and without bf16
autocast. Exits 0 with a note when no GPU is present.

    .venv/bin/python bench/bench_dpsgd_gpu.py                    # 1M rows, batch 16384
    .venv/bin/python bench/bench_dpsgd_gpu.py --batch-size 8192 --epochs 3
    .venv/bin/python bench/bench_dpsgd_gpu.py --device cpu --rows 20000   # smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _run(columns: dict, frame: Any, params: dict, private: bool, device: str) -> dict:
    import torch

    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from synthrelease.generators.dpsgd.nonprivate import fit_nonprivate
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    marks: list[tuple[float, int]] = []

    def tick(info: Any) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        marks.append((time.perf_counter(), info.step))

    gen = DPSGDGenerator(columns, epsilon=3.0, delta=1e-7, params={**params, "device": device})
    if private:
        gen.fit(SensitiveTable(frame, label="adult-1m"), noise=NoiseSource.seeded(0), progress=tick)
        expected = gen.report.training["expected_batch_size"]
    else:
        fit_nonprivate(gen, frame, seed=0, progress=tick)
        expected = min(params["batch_size"], len(frame))
    (t0, s0), (t1, s1) = marks[0], marks[-1]  # from the end of epoch 1 (warm-up) to the end
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    return {"rows_per_s": (s1 - s0) * expected / max(t1 - t0, 1e-9), "peak_mb": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=3, help=">= 2: epoch 1 is warm-up")
    parser.add_argument("--params", default="{}", help="more dpsgd params as JSON")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU available: GPU benchmark skipped")
        return 0
    from bench_dpsgd import load_adult

    columns, train, _ = load_adult()
    rng = np.random.default_rng(0)
    frame = train.iloc[rng.integers(0, len(train), args.rows)].reset_index(drop=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"dpsgd on {name}: Adult resampled to {len(frame)} rows, expected batch "
        f"{args.batch_size}, {args.epochs} epochs (first is warm-up), torch {torch.__version__}"
    )
    print(f"{'mode':>8} {'amp':>4} {'rows/s':>11} {'peak_gpu_mb':>11}")
    for amp in ("off", "on"):
        for private in (False, True):
            params = {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "amp": amp,
                **json.loads(args.params),
            }
            res = _run(columns, frame, params, private, args.device)
            print(
                f"{'DP-SGD' if private else 'no DP':>8} {amp:>4} {res['rows_per_s']:>11,.0f} "
                f"{res['peak_mb']:>11.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
