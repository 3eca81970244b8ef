"""Benchmark: the whole `check` step (GX suite + Data Docs + every real-data check).

    .venv/bin/python bench/bench_validation.py            # Adult, MST at epsilon 1
    .venv/bin/python bench/bench_validation.py --quick    # stand-in synthetic table
    .venv/bin/python bench/bench_validation.py --scale 1 2 4

Each size runs in a fresh process (cold imports included, as in a Prefect task) and
reports wall time, peak RSS (of the main process) and the seconds of each check; then
the same with the check's parts as tasks on a local Dask cluster (``--dask N``
workers, as the ``release-dask`` flow runs them; cluster start-up timed apart). Target (issue 5): <= 60 s for
a 30k x 15 table on 2 cores. With ``--scale k`` the Adult parts are tiled k times: the
checks work on bounded samples (gate.sample_rows, gate.attack_rows, 50,000 rows for
marginals), so time and memory grow only with loading and sampling (linear in rows).
The synthetic table is MST's output at epsilon 1 (fitted once, ~40-400 s), or with
``--quick`` each column resampled independently from the training rows (timing only).
Tiled tables repeat rows, so the gate's figures on them mean nothing (e.g. the
membership attack sees holdout duplicates in its reference): read the time, not the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _spec(tmp: Path):
    import yaml

    from synthrelease.spec import load_spec
    from tests.conftest import adult_spec_for

    path = adult_spec_for(tmp)
    raw = yaml.safe_load(path.read_text())
    raw["privacy"].update(noise="seeded", seed=1)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_spec(path)


def prepare(tmp: Path, *, quick: bool) -> dict[str, str]:
    """Train/holdout splits and a synthetic table, as a run leaves them before `check`."""
    import numpy as np
    import pandas as pd

    from synthrelease import pipeline

    spec = _spec(tmp)
    run_id = "bench"
    if quick:
        paths = pipeline.run_paths(spec, run_id)
        paths.train.parent.mkdir(parents=True, exist_ok=True)
        read = dict(keep_default_na=False, na_values=[""])
        train = pd.read_csv(ROOT / "data" / "adult" / "adult_train.csv", **read)
        holdout = pd.read_csv(ROOT / "data" / "adult" / "adult_test.csv", **read)
        train.to_parquet(paths.train, index=False)
        holdout.to_parquet(paths.holdout, index=False)
        rng = np.random.default_rng(0)
        synthetic = pd.DataFrame(
            {c: train[c].to_numpy()[rng.integers(0, len(train), 30_000)] for c in train.columns}
        )
        synthetic.to_parquet(paths.synthetic, index=False)
    else:
        pipeline.reserve(spec, run_id)
        started = time.perf_counter()
        pipeline.train(spec, run_id)
        pipeline.sample(spec, run_id)
        print(f"(MST fit + sample: {time.perf_counter() - started:.0f} s)", flush=True)
    return {"tmp": str(tmp), "run_id": run_id}


def tile(tmp: Path, run_id: str, k: int) -> None:
    import pandas as pd

    from synthrelease import pipeline

    paths = pipeline.run_paths(_spec(tmp), run_id)
    for p in (paths.train, paths.holdout, paths.synthetic):
        frame = pd.read_parquet(p)
        pd.concat([frame] * k, ignore_index=True).to_parquet(p.with_name(f"x{k}-{p.name}"))


def _warm_imports() -> None:
    import importlib

    for name in (
        "synthrelease.validators.real",
        "synthrelease.validators.expectations",
        "synthrelease.validators.sdmetrics_reports",
        "great_expectations",
        "sdmetrics.reports.single_table",
        "sklearn.ensemble",
        "sklearn.linear_model",
    ):
        importlib.import_module(name)


def _check_on_dask(spec_path: str, run_id: str, spec, workers: int) -> tuple[float, float]:
    """The check step as the ``release-dask`` flow runs it: each part a task on a local
    Dask cluster (processes, 127.0.0.1), then the merge. Returns (seconds, startup s)."""
    from dask.distributed import Client, LocalCluster

    from synthrelease import pipeline, run

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_warm_imports)  # a long-lived cluster has them loaded already
        startup = time.perf_counter() - started
        started = time.perf_counter()
        futures = [
            client.submit(run.direct, f"{run.CHECK_PART}{part}", spec_path, run_id, pure=False)
            for part in pipeline.check_parts(spec)
        ]
        client.gather(futures)
        pipeline.merge_checks(spec, run_id)
        return time.perf_counter() - started, startup


def one(tmp: Path, run_id: str, k: int, workers: int = 0) -> dict[str, object]:
    """Time `check` on the parts tiled k times (run in a fresh process); with
    ``workers``, its parts on a local Dask cluster of that many processes."""
    import shutil

    from synthrelease import pipeline

    spec = _spec(tmp)
    if k > 1:
        spec = spec.model_copy(update={"synthetic_rows": spec.synthetic_rows * k})
    src = pipeline.run_paths(spec, run_id)
    paths = pipeline.run_paths(spec, f"{run_id}-x{k}")
    paths.train.parent.mkdir(parents=True, exist_ok=True)
    for p, q in (
        (src.train, paths.train),
        (src.holdout, paths.holdout),
        (src.synthetic, paths.synthetic),
    ):
        shutil.copy(p.with_name(f"x{k}-{p.name}") if k > 1 else p, q)
    if workers:
        import yaml

        spec_path = tmp / f"adult-x{k}.yaml"  # the workers load the spec from a file
        raw = yaml.safe_load((tmp / "adult.yaml").read_text())
        raw["synthetic_rows"] = spec.synthetic_rows
        spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        seconds, startup = _check_on_dask(str(spec_path), f"{run_id}-x{k}", spec, workers)
    else:
        started, startup = time.perf_counter(), 0.0
        pipeline.check(spec, f"{run_id}-x{k}")
        seconds = time.perf_counter() - started
    stored = json.loads((paths.root / pipeline.FIGURES_FILE).read_text())
    verdict = pipeline.gate(spec, f"{run_id}-x{k}")
    return {
        "k": k,
        "workers": workers,
        "seconds": seconds,
        "startup": startup,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checks": stored["seconds"],
        "errors": stored["errors"],
        "passed": verdict["passed"],
        "failed": [c["name"] for c in verdict["checks"] if not c["passed"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="stand-in synthetic table")
    parser.add_argument("--scale", type=int, nargs="+", default=[1], help="tile factors")
    parser.add_argument(
        "--dask",
        type=int,
        default=2,
        metavar="N",
        help="also run the parts on a local N-worker Dask cluster (0: no)",
    )
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), args.one[1], int(args.one[2]), int(args.one[3]))))
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ctx = prepare(tmp, quick=args.quick)
        for k in args.scale:
            if k > 1:
                tile(tmp, ctx["run_id"], k)
        rows = []
        for k in args.scale:
            for workers in (0, args.dask) if args.dask else (0,):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        folder,
                        ctx["run_id"],
                        str(k),
                        str(workers),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"\ncheck step on Adult ({'stand-in' if args.quick else 'MST epsilon 1'} synthetic), "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| train x holdout x synthetic rows | how | wall s | peak RSS MB | gate | slowest checks (s) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        k = int(r["k"])
        slow = sorted(r["checks"].items(), key=lambda kv: -kv[1])[:4]
        gate = "passed" if r["passed"] else "FAILED: " + ", ".join(r["failed"])
        how = (
            f"parts on Dask, {r['workers']} workers (+{r['startup']:.0f} s cluster start)"
            if r["workers"]
            else "one process"
        )
        print(
            f"| {32561 * k} x {16281 * k} x {30000 * k} | {how} | {r['seconds']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {gate} | "
            + ", ".join(f"{n} {s:.1f}" for n, s in slow)
            + " |"
        )


if __name__ == "__main__":
    main()
