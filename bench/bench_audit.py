"""Benchmark: the one-run privacy audit (issue 15) on the demo table, honest and broken.

Per generator (the demo specs: MST and AIM at epsilon 1, DP-SGD at epsilon 3), the audit
of the honest generator and of each bug it exists to catch (tests/broken_generators.py):
MST and AIM with every Gaussian draw 100x too small, and with the widest column's 1-way
marginal measured without noise; DP-SGD without clipping (noise still calibrated to the
clip norm). The surrogate is the first ``--rows`` rows of Adult. Per row: canaries,
guesses, right guesses, the epsilon lower bound at 95%, the claimed epsilon, whether the
gate refuses (bound > epsilon), the audit's seconds, and the generator's own fit on the
same rows (one plain fit per generator), so that the audit's cost (about one fit, plus
the canary design and the scoring) reads beside it. Seeded noise and coins.

    .venv/bin/python bench/bench_audit.py                          # mst, aim, dpsgd
    .venv/bin/python bench/bench_audit.py --generators dpsgd --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ helpers: the broken generators, the Adult CSV

from tests.broken_generators import ScaledNoise, UnnoisedDraw, no_clipping  # noqa: E402
from tests.public_tables import adult_csv  # noqa: E402

SPECS = {"mst": "adult.yaml", "aim": "adult-aim.yaml", "dpsgd": "adult-dpsgd.yaml"}


def _maker(name: str, *, audit: bool = False) -> Callable:
    """The demo spec's generator; for the audit, with its post-processing parameters
    (``audit_params``) as the pipeline's check step sets them."""
    from synthrelease.generators import audit_spec, build_generator
    from synthrelease.spec import load_spec

    spec = load_spec(ROOT / "configs" / SPECS[name])
    generator = audit_spec(spec.generator) if audit else spec.generator

    def make():
        return build_generator(
            generator,
            spec.columns,
            epsilon=spec.privacy.epsilon,
            delta=spec.privacy.delta,
            target=spec.target,
        )

    return make


def _variants(name: str, sizes: list[int], seed: int) -> Iterator[tuple[str, object, object]]:
    """(variant, noise source, context the audit runs in)."""
    from synthrelease.generators.noise import NoiseSource

    yield "honest", NoiseSource.seeded(seed), contextlib.nullcontext()
    if name == "dpsgd":
        yield "no clipping", NoiseSource.seeded(seed), no_clipping()
    else:
        widest = int(np.argmax(sizes))
        yield "noise / 100", ScaledNoise(seed, factor=0.01), contextlib.nullcontext()
        yield "1-way unnoised (widest)", UnnoisedDraw(seed, index=widest), contextlib.nullcontext()


def _fit_seconds(make: Callable, frame: pd.DataFrame, seed: int) -> float:
    from synthrelease.generators.base import quiet_fits
    from synthrelease.generators.noise import NoiseSource
    from synthrelease.private.table import SensitiveTable

    generator = make()
    start = time.perf_counter()
    with quiet_fits():
        generator.fit(SensitiveTable(frame, label="adult"), noise=NoiseSource.seeded(seed))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", nargs="+", choices=list(SPECS), default=list(SPECS))
    parser.add_argument("--rows", type=int, default=30_000, help="surrogate rows (Adult)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from synthrelease.validators.audit import audit_generator

    adult = pd.read_csv(adult_csv(), skipinitialspace=True).head(args.rows)
    print(f"\nOne-run audit on the first {len(adult)} rows of Adult, seed {args.seed}\n")
    print(
        "| generator | variant | m | guesses | correct | lower bound | epsilon | refused "
        "| audit s | fit s | attack |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for name in args.generators:
        make = _maker(name)
        discretiser = make().discretiser
        frame = adult[list(discretiser.names)]
        fit_s = _fit_seconds(make, frame, args.seed)
        sizes = list(discretiser.sizes.values())
        for variant, noise, context in _variants(name, sizes, args.seed):
            start = time.perf_counter()
            with context:
                result = audit_generator(
                    _maker(name, audit=True),
                    frame,
                    noise=noise,
                    rng=np.random.default_rng(args.seed),
                )
            seconds = time.perf_counter() - start
            print(
                f"| {name} | {variant} | {result.canaries} | {result.guesses} | "
                f"{result.correct} | {result.epsilon_lower_bound:.2f} | {result.epsilon:g} | "
                f"{'yes' if not result.passed else 'no'} | {seconds:.0f} | {fit_s:.0f} | "
                f"{result.attack} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
