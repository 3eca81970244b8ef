"""The end-to-end guarantee's own costs and checks, as tables.

1. The Bernoulli holdout split (a keyed PRF coin per row): seconds per table size, and
   how the holdout size varies across keys (a fixed-size split would not vary).
2. The manifest's epsilon against an independent accountant (Google's dp-accounting,
   RDP): zCDP budgets as MST/AIM spend them, and DP-SGD reference points.

    .venv/bin/python bench/bench_guarantee.py [--rows 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from dp_accounting import dp_event
from dp_accounting.rdp import RdpAccountant

from synthrelease.generators.accounting import cdp_eps, cdp_rho
from synthrelease.generators.dpsgd.accounting import epsilon_of
from synthrelease.private.workspace import bernoulli_holdout


def split_table(rows: list[int]) -> None:
    print("\nBernoulli holdout split (fraction 0.2), 15 columns like the demo table")
    print(f"{'rows':>10} {'seconds':>9} {'us/row':>7} {'holdout mean':>13} {'sd over keys':>13}")
    rng = np.random.default_rng(0)
    for n in rows:
        frame = pd.DataFrame({f"c{i}": rng.integers(0, 50, n) for i in range(15)})
        start = time.perf_counter()
        bernoulli_holdout(frame, fraction=0.2, key=bytes(16))
        seconds = time.perf_counter() - start
        sizes = [
            int(bernoulli_holdout(frame, fraction=0.2, key=bytes([k]) * 16).sum())
            for k in range(1, 6)
        ]
        print(
            f"{n:>10} {seconds:>9.3f} {1e6 * seconds / n:>7.2f} {np.mean(sizes) / n:>13.4f} "
            f"{np.std(sizes):>13.1f}"
        )


def independent_rdp(events: list[tuple[dp_event.DpEvent, int]], delta: float) -> float:
    accountant = RdpAccountant()
    for event, count in events:
        accountant.compose(event, count)
    return float(accountant.get_epsilon(delta))


def accounting_table() -> None:
    print("\nEpsilon: ours against dp-accounting's RDP accountant (independent)")
    print(f"{'mechanism':<34} {'ours':>8} {'dp-accounting':>14} {'ratio':>7}")
    delta = 1e-6
    for eps in (0.3, 1.0, 3.0):
        rho = cdp_rho(epsilon=eps, delta=delta)
        ours = cdp_eps(rho=rho, delta=delta)
        other = independent_rdp([(dp_event.GaussianDpEvent(1 / np.sqrt(2 * rho)), 1)], delta)
        print(
            f"{f'zCDP rho={rho:.4f} (MST/AIM eps {eps:g})':<34} {ours:>8.4f} {other:>14.4f} "
            f"{ours / other:>7.4f}"
        )
    for q, sigma, steps in ((0.01, 4.0, 10_000), (0.01, 1.1, 1_000), (0.04, 1.5, 2_250)):
        ours = epsilon_of([(sigma, q, steps)], delta=1e-5)  # opacus history: (z, q, T)
        event = dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma))
        other = independent_rdp([(event, steps)], 1e-5)
        label = f"DP-SGD q={q} sigma={sigma} T={steps}"
        print(f"{label:<34} {ours:>8.4f} {other:>14.4f} {ours / other:>7.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    split_table(args.rows)
    accounting_table()


if __name__ == "__main__":
    main()
