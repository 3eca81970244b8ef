"""Benchmark: the DP-SGD generator (``dpsgd``) on Adult, next to MST.

Two tables:

1. speed: per-epoch time of the same model trained with DP-SGD and without DP (same
   batches, same optimizer), side by side, each run in a fresh process so that its peak
   memory is its own; wall and CPU seconds (CPU time is less disturbed by other load on
   a shared machine), rows/s and peak RSS.
2. utility at each epsilon: mean 2-way marginal TVD against adult_test (discretised with
   the spec, 32 bins) and train-synthetic/test-real AUC for ``income`` with sklearn's
   HistGradientBoostingClassifier; a train-real/test-real row for reference; MST beside.

    .venv/bin/python bench/bench_dpsgd.py                       # eps 1, 3, 10 + MST
    .venv/bin/python bench/bench_dpsgd.py --epsilons 3 --no-mst --timing-epochs 0
    .venv/bin/python bench/bench_dpsgd.py --params '{"epochs": 10}' --seeded
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "adult.yaml"


def load_adult() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    from synthrelease.private.sources import load_table
    from synthrelease.spec import load_spec

    spec = load_spec(SPEC)
    train = load_table(spec.source, spec.columns, label="adult").reveal()
    test = load_table(spec.holdout.source, spec.columns, label="adult:test").reveal()
    return dict(spec.columns), train, test


# --------------------------------------------------------------------------- utility
def _features(frame: pd.DataFrame, columns: dict, target: str) -> pd.DataFrame:
    out = {}
    for name, col in columns.items():
        if name == target:
            continue
        if col.type == "categorical":
            out[name] = pd.Categorical(frame[name].astype(object), categories=list(col.labels))
        else:
            out[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return pd.DataFrame(out)


def tstr_auc(
    train: pd.DataFrame, test: pd.DataFrame, columns: dict, target: str = "income"
) -> float:
    """Train on ``train`` (synthetic), AUC on ``test`` (real) for the target's last label."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    positive = columns[target].labels[-1]
    y_train = (train[target].astype(str) == positive).to_numpy()
    y_test = (test[target].astype(str) == positive).to_numpy()
    if y_train.all() or not y_train.any():
        return 0.5
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    clf.fit(_features(train, columns, target), y_train)
    return float(roc_auc_score(y_test, clf.predict_proba(_features(test, columns, target))[:, 1]))


def tvd_2way(synthetic: pd.DataFrame, test: pd.DataFrame, columns: dict) -> float:
    from synthrelease.generators.domain import Discretiser
    from synthrelease.validators.utility import marginal_tvd

    disc = Discretiser(columns, default_bins=32)
    return marginal_tvd(disc.encode(synthetic), disc.encode(test), disc.sizes, way=2)


# --------------------------------------------------------------------------- speed
def _timing_child(private: bool, params: dict, epochs: int, threads: int, queue: Any) -> None:
    import torch

    torch.set_num_threads(threads)
    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from synthrelease.generators.dpsgd.nonprivate import fit_nonprivate
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable

    columns, train, _ = load_adult()
    gen = DPSGDGenerator(
        columns, epsilon=3.0, delta=1e-6, params={**params, "epochs": epochs, "device": "cpu"}
    )
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    marks: list[tuple[float, float]] = [(time.perf_counter(), time.process_time())]
    rows: list[float] = []

    def tick(info: Any) -> None:
        marks.append((time.perf_counter(), time.process_time()))
        rows.append(info.rows_per_s)

    if private:
        start = (time.perf_counter(), time.process_time())
        gen.fit(SensitiveTable(train, label="adult"), noise=NoiseSource.seeded(0), progress=tick)
        marks[0] = start  # (the first epoch also pays the count and noise calibration)
    else:
        fit_nonprivate(gen, train, seed=0, progress=tick)
    walls = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    cpus = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "wall": walls,
            "cpu": cpus,
            "rows_per_s": rows[-1],
            "peak_mb": peak / 1024,
            "extra_mb": (peak - base_rss) / 1024,
            "rows": len(train),
        }
    )


def timing(params: dict, epochs: int, repeats: int, threads: int) -> None:
    ctx = mp.get_context("spawn")
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(repeats):
        for private in (False, True):  # interleaved: both see the same machine load
            queue = ctx.Queue()
            proc = ctx.Process(target=_timing_child, args=(private, params, epochs, threads, queue))
            proc.start()
            results[private].append(queue.get())
            proc.join()
    print(
        f"\nspeed on CPU ({threads} thread(s)), {epochs} epochs x {repeats} runs, "
        f"params {params or 'defaults'}; per-epoch seconds: median over epochs 2.. of all runs"
    )
    print(
        f"{'mode':>8} {'epoch_wall_s':>12} {'epoch_cpu_s':>11} {'rows/s':>9} {'peak_rss_mb':>11} "
        f"{'train_mb':>8}"
    )
    med = {}
    for private, runs in results.items():
        walls = [w for r in runs for w in (r["wall"][1:] or r["wall"])]
        cpus = [c for r in runs for c in (r["cpu"][1:] or r["cpu"])]
        med[private] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"{'DP-SGD' if private else 'no DP':>8} {med[private][0]:>12.2f} {med[private][1]:>11.2f} "
            f"{runs[0]['rows'] / med[private][0]:>9.0f} {max(r['peak_mb'] for r in runs):>11.0f} "
            f"{max(r['extra_mb'] for r in runs):>8.0f}"
        )
    print(
        f"DP overhead per epoch: wall {med[True][0] / med[False][0]:.2f}x, "
        f"cpu {med[True][1] / med[False][1]:.2f}x"
    )


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--params", default="{}", help="dpsgd params as JSON")
    parser.add_argument("--rows", type=int, default=30000, help="synthetic rows (public)")
    parser.add_argument("--timing-epochs", type=int, default=3, help="0: skip the speed table")
    parser.add_argument("--timing-repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable on a shared, loaded CPU)"
    )
    parser.add_argument("--no-mst", action="store_true")
    parser.add_argument("--mst-iters", type=int, default=None)
    parser.add_argument("--seeded", action="store_true", help="seeded noise (seed 0)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    params = {"device": "cpu", **json.loads(args.params)}
    if args.timing_epochs:
        timing(params, args.timing_epochs, args.timing_repeats, args.threads)

    import torch

    torch.set_num_threads(args.threads)
    from synthrelease.generators.dpsgd.generator import DPSGDGenerator
    from synthrelease.generators.marginal.mst import MSTGenerator
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable

    columns, train, test = load_adult()
    print(
        f"\nutility on Adult ({len(train)} train rows, {len(test)} test rows), delta "
        f"{args.delta:g}, {args.rows} synthetic rows; dpsgd params {params}"
    )
    print(
        f"{'generator':>9} {'epsilon':>7} {'fit_s':>7} {'tvd_2way':>8} {'tstr_auc':>8} {'eps_spent':>9}"
    )
    print(
        f"{'real':>9} {'-':>7} {'-':>7} {tvd_2way(train, test, columns):>8.4f} "
        f"{tstr_auc(train, test, columns):>8.4f} {'-':>9}",
        flush=True,
    )
    kinds = [("dpsgd", DPSGDGenerator, params)] + (
        []
        if args.no_mst
        else [("mst", MSTGenerator, {} if args.mst_iters is None else {"iters": args.mst_iters})]
    )
    for eps in args.epsilons:
        for name, cls, p in kinds:
            noise = NoiseSource.seeded(0) if args.seeded else NoiseSource.secure()
            gen = cls(columns, epsilon=eps, delta=args.delta, params=p)
            start = time.perf_counter()
            report = gen.fit(SensitiveTable(train, label="adult"), noise=noise)
            fit_s = time.perf_counter() - start
            synth = gen.sample(args.rows, rng=noise.post_processing_rng())
            print(
                f"{name:>9} {eps:>7g} {fit_s:>7.1f} {tvd_2way(synth, test, columns):>8.4f} "
                f"{tstr_auc(synth, test, columns):>8.4f} {report.epsilon:>9.4f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
