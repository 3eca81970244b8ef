"""Benchmark: MST and AIM on Adult: fit time, peak memory, utility; scaling in rows/columns.

Utility (one row per generator, epsilon and repeat): fit wall and CPU seconds, peak
memory of the fit (each fit runs in a fresh process; its resident set size, sampled
every 5 ms, minus its size when the fit started: everything the fit allocates, JAX
buffers included), mean total variation distance of
all 1-, 2- and 3-way marginals between the synthetic rows and the held-out test rows
(``*_test``) and the training rows the model was fitted on (``*_train``), the mean over
the 3-way marginals containing ``income`` (``tvd3_y``), and train-synthetic/test-real ROC
AUC for ``income`` (scikit-learn HistGradientBoostingClassifier, native categoricals;
the same model trained on the real training rows scores ``trtr``). TVDs are on the
discretised domain of the generators (``--bins``: 32 is the spec's; 100 gives one code
per value for age and hours, and 100 bins for fnlwgt and the capital columns, close to
Private-PGM's preprocessed Adult, which also has no ``education`` column: ``--drop``).

    .venv/bin/python bench/bench_marginal.py                       # eps 0.3, 1, 3; mst, aim
    .venv/bin/python bench/bench_marginal.py --epsilons 1 --repeats 3 --seeded
    .venv/bin/python bench/bench_marginal.py --scale rows          # 10k..1M rows (resampled)
    .venv/bin/python bench/bench_marginal.py --scale columns       # 4..15 columns, then 29
    .venv/bin/python bench/bench_marginal.py --profile --epsilons 1  # fit time by phase
    .venv/bin/python bench/bench_marginal.py --epsilons 1 --bins 100 --drop education
                                                  # a domain like Private-PGM's Adult
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "adult"
TARGET = "income"


def _columns() -> dict[str, Any]:
    from synthrelease.spec import load_spec

    return dict(load_spec(ROOT / "configs" / "adult.yaml").columns)


def _fit(
    name: str,
    columns: dict,
    frame: pd.DataFrame,
    *,
    eps: float,
    delta: float,
    params: dict,
    seed: int | None,
    sample_rows: int = 0,
    sample_seed: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Fit (and sample) in a fresh process, so that its memory figures are its own."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(
            _fit_here,
            name,
            columns,
            frame,
            eps,
            delta,
            params,
            seed,
            sample_rows,
            sample_seed,
            verbose,
        ).result()


def _fit_here(
    name: str,
    columns: dict,
    frame: pd.DataFrame,
    eps: float,
    delta: float,
    params: dict,
    seed: int | None,
    sample_rows: int,
    sample_seed: int,
    verbose: bool,
) -> dict[str, Any]:
    from synthrelease.generators import build_generator
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable
    from synthrelease.spec import GeneratorSpec

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    gen = build_generator(
        GeneratorSpec(name=name, params=params),
        columns,
        epsilon=eps,
        delta=delta,
        target=TARGET if TARGET in columns else None,
    )
    noise = NoiseSource.seeded(seed) if seed is not None else NoiseSource.secure()
    with _PeakRSS() as mem:
        start, cpu = time.perf_counter(), time.process_time()
        report = gen.fit(SensitiveTable(frame, label="adult"), noise=noise)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    started = time.perf_counter()
    synth = gen.sample(sample_rows, rng=np.random.default_rng(sample_seed)) if sample_rows else None
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mb": mem.peak_mb,
        "epsilon": report.epsilon,
        "rows_s": getattr(gen, "timings", {}).get("rows_s", float("nan")),
        "rounds": sum(1 for line in report.lines if line.step.endswith("select")),
        "phases": dict(getattr(gen, "timings", {})),
        "sample_s": time.perf_counter() - started,
        "synth": synth,
    }


class _PeakRSS:
    """Peak resident set size above the starting one, sampled by a thread (Linux)."""

    def __enter__(self) -> _PeakRSS:
        self.base = self.top = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.top = max(self.top, self._rss())

    @property
    def peak_mb(self) -> float:
        return (self.top - self.base) / 2**20

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.top = max(self.top, self._rss())

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0


def _tvd(
    a: pd.DataFrame, b: pd.DataFrame, sizes: dict[str, int], way: int, must: str | None = None
) -> float:
    """Mean TVD over all ``way``-column marginals (containing ``must``, if given)."""
    out = []
    for cols in itertools.combinations(list(sizes), way):
        if must is not None and must not in cols:
            continue
        fa, fb = np.zeros(len(a), np.int64), np.zeros(len(b), np.int64)
        for c in cols:
            fa, fb = fa * sizes[c] + a[c].to_numpy(), fb * sizes[c] + b[c].to_numpy()
        m = int(np.prod([sizes[c] for c in cols]))
        pa = np.bincount(fa, minlength=m) / max(len(a), 1)
        pb = np.bincount(fb, minlength=m) / max(len(b), 1)
        out.append(0.5 * np.abs(pa - pb).sum())
    return float(np.mean(out)) if out else float("nan")


def _xy(frame: pd.DataFrame, columns: dict) -> tuple[pd.DataFrame, np.ndarray]:
    x = {}
    for n, c in columns.items():
        if n == TARGET:
            continue
        v = frame[n].reset_index(drop=True)
        if getattr(c, "type", "") == "categorical":
            x[n] = pd.Categorical(v, categories=list(c.labels))
        else:
            x[n] = pd.to_numeric(v, errors="coerce").astype(float)
    y = (frame[TARGET].reset_index(drop=True).astype(str) == ">50K").to_numpy(int)
    return pd.DataFrame(x), y


def _auc(train: pd.DataFrame, test: pd.DataFrame, columns: dict) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    xs, ys = _xy(train, columns)
    xt, yt = _xy(test, columns)
    if len(set(ys)) < 2:
        return float("nan")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    return float(roc_auc_score(yt, model.fit(xs, ys).predict_proba(xt)[:, 1]))


def utility(args: argparse.Namespace) -> None:
    from synthrelease.generators.domain import Discretiser

    columns = {n: c for n, c in _columns().items() if n not in args.drop}
    train = pd.read_csv(DATA / "adult_train.csv")[list(columns)]
    test = pd.read_csv(DATA / "adult_test.csv")[list(columns)]
    disc = Discretiser(columns, default_bins=args.bins)
    test_c, train_c = disc.encode(test), disc.encode(train)
    print(
        f"Adult ({train.shape[1]} columns), bins={args.bins}, delta={args.delta:g}, "
        f"{args.rows} synthetic rows; real-vs-real: tvd2 test-vs-train "
        f"{_tvd(test_c, train_c, disc.sizes, 2):.4f}, trtr AUC {_auc(train, test, columns):.4f}"
    )
    head = (
        f"{'gen':>4} {'eps':>5} {'rep':>3} {'fit_s':>7} {'cpu_s':>7} {'peak_mb':>8} "
        f"{'tvd1_test':>9} {'tvd2_test':>9} {'tvd3_test':>9} {'tvd3_y':>7} "
        f"{'tvd2_train':>10} {'tvd3_train':>10} {'tstr_auc':>8}"
    )
    print(head)
    for name, eps, rep in itertools.product(args.generators, args.epsilons, range(args.repeats)):
        params = {"bins": args.bins, **({"iters": args.iters} if args.iters else {})}
        out = _fit(
            name,
            columns,
            train,
            eps=eps,
            delta=args.delta,
            params=params,
            seed=rep if args.seeded else None,
            sample_rows=args.rows,
            sample_seed=1000 + rep,
            verbose=args.verbose,
        )
        wall, cpu, peak, synth = out["wall"], out["cpu"], out["peak_mb"], out["synth"]
        codes = disc.encode(synth)
        t = [_tvd(codes, test_c, disc.sizes, w) for w in (1, 2, 3)]
        print(
            f"{name:>4} {eps:>5g} {rep:>3} {wall:>7.1f} {cpu:>7.1f} {peak:>8.0f} "
            f"{t[0]:>9.4f} {t[1]:>9.4f} {t[2]:>9.4f} "
            f"{_tvd(codes, test_c, disc.sizes, 3, TARGET):>7.4f} "
            f"{_tvd(codes, train_c, disc.sizes, 2):>10.4f} "
            f"{_tvd(codes, train_c, disc.sizes, 3):>10.4f} {_auc(synth, test, columns):>8.4f}",
            flush=True,
        )


def scale(args: argparse.Namespace) -> None:
    columns = _columns()
    train = pd.read_csv(DATA / "adult_train.csv")[list(columns)]
    rng = np.random.default_rng(0)
    print(f"fit time at epsilon {args.epsilons[0]:g} (seeded noise), bins={args.bins}")
    print(
        "rows_s: the part of the fit that reads and counts rows (aim only); the rest "
        "works on DP measurements and depends on rows only through the signal-to-noise"
    )
    print(
        f"{'gen':>4} {'rows':>8} {'cols':>4} {'fit_s':>7} {'cpu_s':>7} {'peak_mb':>8} "
        f"{'rows_s':>7} {'us/row':>7} {'rounds':>6}"
    )
    if args.scale == "rows":
        cases = [(n, columns) for n in (10_000, 30_000, 100_000, 300_000, 1_000_000)]
    else:
        names = list(columns)
        cases = [(len(train), {n: columns[n] for n in names[:k]}) for k in (4, 8, 12, 15)]
        wide = {**columns, **{f"{n}_2": c for n, c in columns.items() if n != TARGET}}
        cases.append((len(train), wide))
    for name, (rows, cols) in itertools.product(args.generators, cases):
        frame = train.iloc[rng.integers(0, len(train), rows)].reset_index(drop=True)
        for n in cols:
            if n not in frame:  # the widened table: the column's values, shuffled
                frame[n] = frame[n[:-2]].sample(frac=1.0, random_state=1).to_numpy()
        out = _fit(
            name,
            cols,
            frame[list(cols)],
            eps=args.epsilons[0],
            delta=args.delta,
            params={"bins": args.bins},
            seed=0,
            verbose=args.verbose,
        )
        wall, cpu, peak, rows_s, rounds = (
            out[k] for k in ("wall", "cpu", "peak_mb", "rows_s", "rounds")
        )
        print(
            f"{name:>4} {rows:>8} {len(cols):>4} {wall:>7.1f} {cpu:>7.1f} {peak:>8.0f} "
            f"{rows_s:>7.1f} {1e6 * wall / rows:>7.1f} {rounds:>6}",
            flush=True,
        )


def profile(args: argparse.Namespace) -> None:
    """Where the fit time goes, phase by phase (one seeded fit per generator/epsilon)."""
    columns = _columns()
    train = pd.read_csv(DATA / "adult_train.csv")[list(columns)]
    print(f"fit phases on Adult (seeded noise), bins={args.bins}, {args.rows} rows sampled")
    print(
        "mst: measure_select = read rows, 1-way + tree selection + 2-way measurement; "
        "estimate = mirror descent"
    )
    print(
        "aim: rows = read and count rows; select = rounds' selection + measurement; "
        "estimate = rounds' warm-started estimations; final = last estimation"
    )
    print(f"{'gen':>4} {'eps':>5} {'fit_s':>7} {'phases (s)':<70} {'sample_s':>8}")
    for name, eps in itertools.product(args.generators, args.epsilons):
        out = _fit(
            name,
            columns,
            train,
            eps=eps,
            delta=args.delta,
            params={"bins": args.bins},
            seed=0,
            sample_rows=args.rows,
        )
        phases = ", ".join(f"{k[:-2]} {v:.2f}" for k, v in out["phases"].items())
        print(
            f"{name:>4} {eps:>5g} {out['wall']:>7.2f} {phases:<70} {out['sample_s']:>8.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", nargs="+", default=["mst", "aim"])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--bins", type=int, default=32, help="bins per numeric column")
    parser.add_argument(
        "--drop",
        nargs="*",
        default=[],
        help="columns to leave out (e.g. education: Private-PGM's Adult keeps only education-num)",
    )
    parser.add_argument("--iters", type=int, default=None, help="estimation iterations")
    parser.add_argument("--rows", type=int, default=30000, help="synthetic rows (public)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeded", action="store_true", help="seeded noise (repeat r: seed r)")
    parser.add_argument("--scale", choices=["rows", "columns"], help="fit time vs rows/columns")
    parser.add_argument("--profile", action="store_true", help="fit time by phase")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.profile:
        profile(args)
    elif args.scale:
        scale(args)
    else:
        utility(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
