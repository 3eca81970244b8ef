"""Benchmark: releases of 1M to 100M rows on one machine (issue 16).

    .venv/bin/python bench/bench_scale.py                              # 1M and 10M, MST
    .venv/bin/python bench/bench_scale.py --rows 1e6,1e7,1e8 --generators mst,aim
    .venv/bin/python bench/bench_scale.py --rows 1e6 --synthetic 1e6   # sampling speed

The tables are the demo table (Adult, ``../shared/data/adult_train.csv``) resampled with
replacement to N rows, with jitter on the numeric columns (age +-2 years, fnlwgt x
N(1, 0.05), hours +-3; clipped to the declared bounds), written as a partitioned Parquet
dataset (one file a million rows) under ``--data`` (kept: generating 100M rows takes
minutes). Each release runs in a fresh process, step by step as ``synthrelease run
--engine direct`` does (reserve, train, sample, check, gate, publish, finish), with the
spec of ``configs/adult.yaml`` (its columns) on that dataset: holdout fraction 0.2,
``--synthetic`` rows, secure noise, a lifetime budget of 1,000.

Per release: the wall time of each step and the peak resident memory of the process
(``ru_maxrss``: every page it ever held, the Python interpreter and libraries included),
and the sampling rate. Every figure here comes from a PUBLIC table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "data" / "adult_train.csv"
FILE_ROWS = 1_000_000
STEPS = ("reserve", "train", "sample", "check", "gate", "publish", "finish")


def write_dataset(rows: int, folder: Path, *, seed: int = 0) -> Path:
    """The demo table resampled to ``rows`` rows with jitter, as Parquet files of
    FILE_ROWS rows (skipped when ``folder`` already holds them)."""
    done = folder / "_complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = pd.read_csv(ADULT, skipinitialspace=True, na_values=["?"], keep_default_na=False)
    base = base.rename(columns=lambda c: c.strip())
    rng = np.random.default_rng(seed)
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        part = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
        part["age"] = (part["age"] + rng.integers(-2, 3, n)).clip(17, 90)
        part["fnlwgt"] = (part["fnlwgt"] * rng.normal(1, 0.05, n)).round().clip(0, 1_500_000)
        part["fnlwgt"] = part["fnlwgt"].astype(np.int64)
        part["hours-per-week"] = (part["hours-per-week"] + rng.integers(-3, 4, n)).clip(1, 99)
        part.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    done.touch()
    return folder


def write_spec(folder: Path, data: Path, *, generator: str, synthetic: int) -> Path:
    spec = yaml.safe_load((ROOT / "configs" / "adult.yaml").read_text())
    spec["source"] = {"kind": "parquet", "path": str(data)}
    spec["holdout"] = {"fraction": 0.2}
    spec["generator"] = {"name": generator, "params": {"bins": 32}}
    spec["synthetic_rows"] = synthetic
    spec["privacy"]["budget"] = {"epsilon": 1000.0, "delta": 1e-3}
    spec["gate"] = {"max_tvd_1way": 0.5, "max_tvd_2way": 0.5, "expectations": True}
    spec["workspace"] = {"path": str(folder / "ws")}
    spec["store"] = {"uri": str(folder / "releases")}
    spec.pop("models", None)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def one(spec_path: str) -> None:
    """In a fresh process: the steps of one release, timed; prints one JSON line."""
    sys.path.insert(0, str(ROOT))
    from synthrelease import run

    seconds: dict[str, float] = {}
    with run.opened(spec_path) as run_dir:
        for step in STEPS:
            start = time.perf_counter()
            result = getattr(run, step)(run_dir)
            seconds[step] = time.perf_counter() - start
    failure = next(Path(run_dir).glob("failure.txt"), None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_bytes": peak,
                "published": bool(getattr(result, "release_id", None)),
                "failure": failure.read_text().splitlines()[0] if failure else None,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1e6,1e7", help="row counts, comma-separated")
    parser.add_argument("--generators", default="mst")
    parser.add_argument("--synthetic", type=float, default=100_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench_scale")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    header = "| rows | generator | " + " | ".join(STEPS) + " | total s | peak RSS GB | published |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for rows in (int(float(x)) for x in args.rows.split(",")):
        data = write_dataset(rows, args.data / f"adult_{rows}")
        for generator in args.generators.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                spec = write_spec(
                    Path(tmp), data, generator=generator, synthetic=int(args.synthetic)
                )
                done = subprocess.run(
                    [sys.executable, __file__, "--one", str(spec)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
                if not lines:
                    print(f"| {rows:,} | {generator} | failed: {done.stderr[-300:]!r} |")
                    continue
                out = json.loads(lines[-1])
                s = out["seconds"]
                cells = " | ".join(f"{s[k]:.0f}" for k in STEPS)
                print(
                    f"| {rows:,} | {generator} | {cells} | {sum(s.values()):.0f} | "
                    f"{out['peak_bytes'] / 2**30:.2f} | "
                    f"{'yes' if out['published'] else out['failure'] or 'no'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
