"""Benchmark: MST on the Adult table at several epsilons.

Prints one row per (epsilon, repeat): fit wall and CPU seconds (CPU time counts all
threads; it is steadier than wall time on a shared machine), and the mean total variation distance
(TVD) of all 1-way and 2-way marginals between the synthetic rows and the held-out test
rows, on the discretised domain of the spec. The first fit of a process also pays the
JAX import (~1-2 s); every fit compiles its own estimator (the tree differs).

    .venv/bin/python bench/bench_mst.py                      # eps 0.3, 1, 3
    .venv/bin/python bench/bench_mst.py --epsilons 1 --repeats 3 --seeded
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "data" / "adult" / "adult_train.csv"
FALLBACK_DATA = ROOT.parent / "shared" / "data" / "adult_train.csv"

# Used only when configs/adult.yaml is missing: bounds and categories are public
# documentation (UCI adult.names), never read off the rows.
_FALLBACK_COLUMNS = {
    "age": {"type": "numerical", "lower": 16, "upper": 100, "integer": True},
    "workclass": {"type": "categorical", "nullable": True, "categories": [
        "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov",
        "State-gov", "Without-pay", "Never-worked"]},
    "fnlwgt": {"type": "numerical", "lower": 0, "upper": 1500000, "integer": True},
    "education": {"type": "categorical", "categories": [
        "Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
        "Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th", "Doctorate",
        "5th-6th", "Preschool"]},
    "education-num": {"type": "numerical", "lower": 1, "upper": 16, "integer": True},
    "marital-status": {"type": "categorical", "categories": [
        "Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
        "Married-spouse-absent", "Married-AF-spouse"]},
    "occupation": {"type": "categorical", "nullable": True, "other": "Other", "categories": [
        "Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
        "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
        "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
        "Armed-Forces"]},
    "relationship": {"type": "categorical", "categories": [
        "Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"]},
    "race": {"type": "categorical", "categories": [
        "White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"]},
    "sex": {"type": "categorical", "categories": ["Female", "Male"]},
    "capital-gain": {"type": "numerical", "lower": 0, "upper": 100000, "integer": True},
    "capital-loss": {"type": "numerical", "lower": 0, "upper": 5000, "integer": True},
    "hours-per-week": {"type": "numerical", "lower": 1, "upper": 99, "integer": True},
    "native-country": {"type": "categorical", "nullable": True, "other": "Other",
                       "categories": ["United-States", "Mexico", "Philippines", "Germany",
                                      "Canada", "Puerto-Rico", "India", "Cuba", "England"]},
    "income": {"type": "categorical", "categories": ["<=50K", ">50K"]},
}


def _columns() -> dict:
    from pydantic import TypeAdapter

    from synthrelease.spec import Column, load_spec

    spec_path = ROOT / "configs" / "adult.yaml"
    if spec_path.exists():
        return dict(load_spec(spec_path).columns)
    adapter = TypeAdapter(Column)
    return {n: adapter.validate_python(c) for n, c in _FALLBACK_COLUMNS.items()}


def _data_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    return DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA


def _mean_tvd(a: pd.DataFrame, b: pd.DataFrame, sizes: dict[str, int], way: int) -> float:
    """Mean TVD over all ``way``-column marginals of two integer-coded frames."""
    out = []
    for cols in itertools.combinations(list(sizes), way):
        fa, fb = np.zeros(len(a), np.int64), np.zeros(len(b), np.int64)
        for c in cols:
            fa, fb = fa * sizes[c] + a[c].to_numpy(), fb * sizes[c] + b[c].to_numpy()
        m = int(np.prod([sizes[c] for c in cols]))
        pa = np.bincount(fa, minlength=m) / max(len(a), 1)
        pb = np.bincount(fb, minlength=m) / max(len(b), 1)
        out.append(0.5 * np.abs(pa - pb).sum())
    return float(np.mean(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="training CSV (default: data/adult/adult_train.csv)")
    parser.add_argument("--test", help="held-out CSV (default: adult_test.csv beside --data)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--iters", type=int, default=None, help="estimation iterations")
    parser.add_argument("--rows", type=int, default=30000, help="synthetic rows (public)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeded", action="store_true", help="seeded noise (repeat r: seed r)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    from synthrelease.generators.domain import Discretiser
    from synthrelease.generators.mst import MSTGenerator
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable

    data = _data_path(args.data)
    test_path = Path(args.test) if args.test else data.with_name("adult_test.csv")
    columns = _columns()
    names = list(columns)
    train = pd.read_csv(data)[names]
    test = pd.read_csv(test_path)[names]
    params = {} if args.iters is None else {"iters": args.iters}
    disc = Discretiser(columns, default_bins=MSTGenerator.Params(**params).bins)
    test_codes = disc.encode(test)
    print(f"MST on {data.name} ({len(names)} columns), held-out {test_path.name}, "
          f"delta={args.delta:g}, {args.rows} synthetic rows, params={params or 'defaults'}")
    print(f"{'epsilon':>8} {'rep':>3} {'fit_s':>7} {'cpu_s':>7} {'tvd_1way':>9} {'tvd_2way':>9}"
          f" {'eps_spent':>10}")
    for eps, rep in itertools.product(args.epsilons, range(args.repeats)):
        gen = MSTGenerator(columns, epsilon=eps, delta=args.delta, params=params)
        noise = NoiseSource.seeded(rep) if args.seeded else NoiseSource.secure()
        start, cpu = time.perf_counter(), time.process_time()
        report = gen.fit(SensitiveTable(train, label="adult"), noise=noise)
        fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        synth = gen.sample(args.rows, rng=noise.post_processing_rng())
        codes = disc.encode(synth)
        tvd1 = _mean_tvd(codes, test_codes, disc.sizes, 1)
        tvd2 = _mean_tvd(codes, test_codes, disc.sizes, 2)
        print(f"{eps:>8g} {rep:>3} {fit_s:>7.1f} {cpu_s:>7.1f} {tvd1:>9.4f} {tvd2:>9.4f}"
              f" {report.epsilon:>10.6g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
