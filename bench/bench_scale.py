"""Benchmark: releases of 1M to 100M rows on one machine (issue 16).

    .venv/bin/python bench/bench_scale.py                              # 1M and 10M, MST
    .venv/bin/python bench/bench_scale.py --rows 1e6,1e7,1e8 --generators mst,aim
    .venv/bin/python bench/bench_scale.py --rows 1e6 --synthetic 1e6   # sampling speed
    .venv/bin/python bench/bench_scale.py --rows 1e7 --workers 1,2 --dask  # shards: 1 or 2
                      # local processes, and a local 2-worker Dask cluster, side by side

The tables are the demo table (Adult, ``../shared/data/adult_train.csv``) resampled with
replacement to N rows, with jitter on the numeric columns (age +-2 years, fnlwgt x
N(1, 0.05), hours +-3; clipped to the declared bounds), written as a partitioned Parquet
dataset (one file a million rows) under ``--data`` (kept: generating 100M rows takes
minutes). Each release runs in a fresh process, step by step as ``synthrelease run
--engine direct`` does (reserve, train, sample, check, gate, publish, finish), with the
spec of ``configs/adult.yaml`` (its columns) on that dataset: holdout fraction 0.2,
``--synthetic`` rows, secure noise, a lifetime budget of 1,000.

Per release: the wall time of each step and the peak resident memory of the process
(``ru_maxrss``: every page it ever held, the Python interpreter and libraries included;
with local shard workers, the largest of the release's process and its workers; a Dask
cluster's workers are not counted). The shards
(one a file) run on ``--workers`` local processes (``SYNTHRELEASE_INGEST_WORKERS``) or,
with ``--dask``, on a local 2-worker Dask cluster (``SYNTHRELEASE_DASK_ADDRESS``). Last,
a paper calculation of a 1B-row release on N workers from the measured cost of a file.
Every figure here comes from a PUBLIC table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
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
PG_ENV = "BENCH_PG_URL"
PG_PLACE = "PostgreSQL, counted there"
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


def load_postgres(url: str, data: Path) -> None:
    """The dataset as the PostgreSQL table ``adult`` (typed as the spec declares its
    columns: integers as bigint, categories as text), file by file through COPY."""
    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    columns = yaml.safe_load((ROOT / "configs" / "adult.yaml").read_text())["schema"]["columns"]
    types = {
        n: "bigint"
        if c["type"] == "numerical" and c.get("integer")
        else "double precision"
        if c["type"] == "numerical"
        else "text"
        for n, c in columns.items()
    }
    start = time.perf_counter()
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("DROP TABLE IF EXISTS adult")
        conn.execute(
            "CREATE TABLE adult (" + ", ".join(f'"{n}" {t}' for n, t in types.items()) + ")"
        )
        names = ", ".join(f'"{n}"' for n in types)
        for path in sorted(data.glob("part-*.parquet")):
            table = pq.read_table(path, columns=list(types))
            out = io.BytesIO()
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY adult ({names}) FROM STDIN (FORMAT csv)") as copy,
            ):
                copy.write(out.getvalue())
        conn.execute("ANALYZE adult")
    print(
        f"(loaded {data.name} into PostgreSQL in {time.perf_counter() - start:.0f} s)", flush=True
    )


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
    peak = 1024 * max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,  # the shard workers
    )
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
    parser.add_argument("--workers", default="2", help="local shard workers, comma-separated")
    parser.add_argument("--dask", action="store_true", help="also on a local 2-worker cluster")
    parser.add_argument("--synthetic", type=float, default=100_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench_scale")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also from a PostgreSQL table (a server this bench starts; counted in the database)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    header = (
        "| rows | generator | shards on | "
        + " | ".join(STEPS)
        + " | total s | peak RSS GB | published |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    per_file: list[tuple[int, float, float]] = []  # (files, train s x workers / files, rest s)
    places = [
        (f"{w} process{'es' if int(w) > 1 else ''}", int(w))
        for w in args.workers.split(",")
        if w.isdigit()  # "none": only the PostgreSQL source
    ]
    if args.dask:
        places.append(("Dask, 2 workers", 2))
    server = contextlib.ExitStack()
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.pg import postgres_server

        url = server.enter_context(postgres_server())
        if url is None:
            raise SystemExit("PostgreSQL is not installed (scripts/ensure-postgres.sh)")
        os.environ[PG_ENV] = url
        places.append((PG_PLACE, 1))
    for rows in (int(float(x)) for x in args.rows.split(",")):
        data = write_dataset(rows, args.data / f"adult_{rows}")
        files = len(list(data.glob("part-*.parquet")))
        if args.postgres:
            load_postgres(os.environ[PG_ENV], data)
        for generator in args.generators.split(","):
            for place, workers in places:
                out = _release(data, generator, args.synthetic, place, workers)
                if out is None:
                    continue
                s = out["seconds"]
                cells = " | ".join(f"{s[k]:.0f}" for k in STEPS)
                print(
                    f"| {rows:,} | {generator} | {place} | {cells} | {sum(s.values()):.0f} | "
                    f"{out['peak_bytes'] / 2**30:.2f} | "
                    f"{'yes' if out['published'] else out['failure'] or 'no'} |",
                    flush=True,
                )
                if generator == "mst" and place != PG_PLACE:
                    other = sum(s.values()) - s["train"]
                    per_file.append((files, s["train"] * workers / files, other))
    server.close()
    if per_file:
        _, cost, other = max(per_file)  # the largest dataset measured (ties: the dearest)
        print(
            f"\n1B rows (1,000 files of 1M rows) with MST, on paper: {cost:.0f} s a file "
            f"(the train step x workers / files of the largest dataset measured, the "
            f"coordinator's share included) / N workers, plus {other:.0f} s of the other "
            "steps (flat in the rows, but for the row scan's)\n"
        )
        print("| workers N | train s | total s |")
        print("|---|---|---|")
        for n in (2, 8, 32, 128):
            train = cost * 1000 / n
            print(f"| {n} | {train:,.0f} | {train + other:,.0f} |")


def _release(data: Path, generator: str, synthetic: float, place: str, workers: int) -> dict | None:
    """One release in a fresh process, its shards on ``place``."""
    env = {**os.environ, "SYNTHRELEASE_INGEST_WORKERS": str(workers)}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if place.startswith("Dask"):
            from distributed import LocalCluster

            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            env["SYNTHRELEASE_DASK_ADDRESS"] = cluster.scheduler_address
        spec = write_spec(Path(tmp), data, generator=generator, synthetic=int(synthetic))
        if place == PG_PLACE:
            raw = yaml.safe_load(spec.read_text())
            raw["source"] = {"kind": "sql", "url_env": PG_ENV, "table": "adult"}
            spec.write_text(yaml.safe_dump(raw, sort_keys=False))
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(spec)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if not lines:
        print(f"| {place} | {generator} | failed: {done.stderr[-300:]!r} |")
        return None
    return json.loads(lines[-1])


if __name__ == "__main__":
    main()
