"""Issue 15: every release carries a one-run privacy audit (Steinke, Nasr & Jagielski,
NeurIPS 2023) on a public surrogate, and the gate refuses a release whose empirical
epsilon lower bound exceeds its claim. The attacks these tests drive are the bugs the
audit exists for: Gaussian noise 100x too small, and a 1-way marginal measured without
noise (DP-SGD without clipping: tests/test_audit_power_dpsgd.py)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from synthrelease import pipeline, run
from synthrelease.errors import AuditError, GateFailedError
from synthrelease.generators import build_generator
from synthrelease.generators.noise import NoiseSource
from synthrelease.spec import Gate, load_spec
from synthrelease.store import ReleaseStore
from synthrelease.validators.audit import audit_generator
from synthrelease.validators.audit.bound import epsilon_lower_bound
from synthrelease.validators.audit.canaries import design_canaries, dump_values
from synthrelease.validators.audit.run import ceiling
from synthrelease.validators.gate import evaluate_gate
from tests.broken_generators import ScaledNoise, UnnoisedDraw, release_with_scaled_noise

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


# --------------------------------------------------------------------------- the bound
def paper_bound(m: int, r: int, v: int, delta: float, alpha: float) -> float:
    """Theorem 5.2 of the paper, written out independently of jax-privacy: the p-value of
    v or more right guesses out of r under (eps, delta)-DP is at most
    P[Bin(r, q) >= v] + 2 m delta max_i (P[Bin(r, q) >= v - i] - P[Bin(r, q) >= v]) / i
    with q = e^eps / (1 + e^eps); the bound is the eps where it reaches alpha."""

    def p_value(eps: float) -> float:
        q = 1.0 / (1.0 + math.exp(-eps))
        beta = stats.binom.sf(v - 1, r, q)
        extra = max((stats.binom.sf(v - i - 1, r, q) - beta) / i for i in range(1, v + 1))
        return min(beta + extra * delta * 2 * m, 1.0)

    if p_value(0.0) > alpha:
        return 0.0
    hi = 1.0
    while p_value(hi) <= alpha:
        hi *= 2
    return optimize.brentq(lambda e: p_value(e) - alpha, 0.0, hi, xtol=1e-9)


@pytest.mark.parametrize(
    ("m", "r", "v", "delta", "alpha"),
    [
        (1000, 100, 100, 1e-6, 0.05),
        (1000, 200, 180, 1e-5, 0.05),
        (265, 64, 64, 1e-6, 0.05 / 6),
        (500, 50, 45, 1e-3, 0.05),  # delta large enough to matter
        (1000, 1000, 700, 1e-6, 0.05),
    ],
)
def test_the_bound_is_the_papers_theorem(m, r, v, delta, alpha):
    ours = epsilon_lower_bound(canaries=m, guesses=r, correct=v, delta=delta, significance=alpha)
    assert ours == pytest.approx(paper_bound(m, r, v, delta, alpha), abs=1e-4)
    assert ours > 0


@pytest.mark.parametrize(
    ("m", "r", "v", "delta", "alpha"),
    [
        (m, r, v, delta, alpha)
        for m, r in [(40, 16), (265, 64), (265, 256), (1000, 256)]
        for v in (r // 2, (3 * r) // 4, r - 2, r)
        for delta, alpha in [(1e-6, 0.05 / 5), (1e-3, 0.05)]
    ],
)
def test_the_bound_equals_jax_privacys(m, r, v, delta, alpha):
    """Google DeepMind's implementation of the same theorem (jax-privacy 2.0.0, a test
    dependency: its import costs about 4 s, see validators/audit/bound.py)."""
    from jax_privacy.auditing import _epsilon_one_run

    theirs = max(float(_epsilon_one_run(0.0, m, r, v, alpha, delta)), 0.0)
    ours = epsilon_lower_bound(canaries=m, guesses=r, correct=v, delta=delta, significance=alpha)
    assert ours == pytest.approx(theirs, abs=1e-5)


@pytest.mark.parametrize("r", [10, 32, 100, 500])
def test_all_right_guesses_give_the_closed_form_as_delta_vanishes(r):
    """delta -> 0, v = r: q^r = alpha, so eps = logit(alpha^(1/r))."""
    q = 0.05 ** (1 / r)
    closed = math.log(q / (1 - q))
    got = epsilon_lower_bound(canaries=2 * r, guesses=r, correct=r, delta=1e-15, significance=0.05)
    assert got == pytest.approx(closed, rel=1e-4)


def test_chance_level_guesses_refute_nothing_and_bad_counts_are_refused():
    assert (
        epsilon_lower_bound(canaries=100, guesses=40, correct=20, delta=1e-6, significance=0.05)
        == 0
    )
    assert (
        epsilon_lower_bound(canaries=100, guesses=40, correct=0, delta=1e-6, significance=0.05) == 0
    )
    with pytest.raises(AuditError):
        epsilon_lower_bound(canaries=10, guesses=20, correct=5, delta=1e-6, significance=0.05)
    with pytest.raises(AuditError):
        epsilon_lower_bound(canaries=100, guesses=20, correct=5, delta=0.0, significance=0.05)


# --------------------------------------------------------------------------- canaries
def test_each_canary_owns_a_one_way_cell_and_sits_on_the_rarest_values():
    rng = np.random.default_rng(0)
    sizes = [5, 3, 2, 1]
    surrogate = np.column_stack(
        [rng.choice(s, size=400, p=np.arange(1, s + 1) / np.arange(1, s + 1).sum()) for s in sizes]
    )
    dump = dump_values(surrogate, sizes)
    assert list(dump) == [0, 0, 0, 0]  # the least held code of each column
    canaries = design_canaries(surrogate, sizes, limit=1000)
    assert len(canaries) == sum(s - 1 for s in sizes)  # a function of the public domain
    differs = canaries != dump
    assert (differs.sum(axis=1) == 1).all()  # one own value each, dump values elsewhere
    own = {(int(j), int(canaries[i, j])) for i, j in zip(*np.nonzero(differs))}
    assert len(own) == len(canaries)  # no two canaries share their own cell
    few = design_canaries(surrogate, sizes, limit=3)
    assert sorted(int(np.nonzero(row != dump)[0][0]) for row in few) == [0, 1, 2]  # round-robin
    with pytest.raises(AuditError):
        design_canaries(surrogate[:, 3:], sizes[3:], limit=10)  # constant column: nothing to own


# --------------------------------------------------------------------------- power
def gate_passes_audit(audit: dict, *, epsilon: float) -> bool:
    """The release gate's privacy_audit check on an audit's figures."""
    verdict = evaluate_gate(
        figures={}, expectations=None, gate=Gate(expectations=False), audit=audit, epsilon=epsilon
    )
    return next(c for c in verdict.checks if c.name == "privacy_audit").passed


def _adult(rows: int) -> pd.DataFrame:
    frame = pd.read_csv(ROOT / "data" / "adult" / "adult_train.csv", skipinitialspace=True)
    return frame.head(rows)


@pytest.fixture(scope="module")
def adult_rows() -> pd.DataFrame:
    return _adult(10_000)


@pytest.mark.parametrize("config", ["adult.yaml", "adult-aim.yaml"])
def test_the_audit_passes_honest_and_refuses_broken_marginal_generators(config, adult_rows):
    """MST and AIM at epsilon 1 on the demo table: the honest fit's bound stays at or
    below 1; with every Gaussian 100x too small, or the widest column's 1-way marginal
    measured without noise, the bound lands above 1 and the gate would refuse."""
    spec = load_spec(CONFIGS / config)

    def make():
        return build_generator(
            spec.generator,
            spec.columns,
            epsilon=1.0,
            delta=spec.privacy.delta,
            target=spec.target,
        )

    sizes = list(make().discretiser.sizes.values())
    widest = int(np.argmax(sizes))
    results = {
        name: audit_generator(
            make, adult_rows[list(spec.columns)], noise=noise, rng=np.random.default_rng(3)
        )
        for name, noise in [
            ("honest", NoiseSource.seeded(5)),
            ("noise / 100", ScaledNoise(5, factor=0.01)),
            ("1-way unnoised", UnnoisedDraw(5, index=widest)),
        ]
    }
    honest = results["honest"]
    assert honest.passed and honest.epsilon_lower_bound <= 1.0
    assert honest.canaries == sum(s - 1 for s in sizes) and honest.ceiling > 1.5
    for name in ("noise / 100", "1-way unnoised"):
        broken = results[name]
        assert not broken.passed and broken.epsilon_lower_bound > 1.0, (name, broken)
    for name, result in results.items():  # what the gate makes of each audit
        assert gate_passes_audit(result.to_dict(), epsilon=1.0) is (name == "honest")
    assert results["noise / 100"].epsilon_lower_bound > 1.5


def test_the_ceiling_says_how_much_an_audit_can_refute():
    assert ceiling(38, delta=1e-6, confidence=0.95) < 3.0  # a small domain: weak audit
    assert ceiling(265, delta=1e-6, confidence=0.95) > 3.0


# --------------------------------------------------------------------------- releases
def test_a_release_carries_its_audit_in_the_manifest_datasheet_and_readme(spec_factory):
    path = spec_factory()
    summary = run.release(path)
    spec = load_spec(path)
    name, version = summary.release_id.split("@")
    store = ReleaseStore(spec.store.uri)
    manifest = store.manifest(name, version)
    audit = manifest["privacy"]["audit"]
    assert audit["ran"] is True and audit["epsilon"] == pytest.approx(3.0)
    assert 0 <= audit["epsilon_lower_bound"] <= 3.0
    assert audit["canaries"] >= 2 and audit["guesses"] <= audit["canaries"]
    assert "LOWER bound" in audit["meaning"]
    assert "privacy_audit" in {c["name"] for c in manifest["gate"]["checks"]}
    paths = pipeline.run_paths(spec, summary.run_id)
    sheet = json.loads((paths.root / "datasheet" / "datasheet.json").read_text())
    assert sheet["privacy"]["audit"]["epsilon_lower_bound"] == audit["epsilon_lower_bound"]
    assert "Privacy audit" in (paths.root / "datasheet" / "datasheet.md").read_text()


def test_the_audit_reads_no_real_row(spec_factory):
    """With the table, its training and holdout parts gone, the audit part still runs:
    it reads only the synthetic table (its figures are public)."""
    path = spec_factory()
    spec = load_spec(path)
    summary = run.release(path)
    runs = pipeline.run_paths(spec, summary.run_id).root
    pinned = pipeline.PinnedRun.load(str(runs))
    for part in (pinned.paths.train, pinned.paths.holdout, Path(spec.source.path)):
        if Path(part).is_dir():
            shutil.rmtree(part)
        else:
            Path(part).unlink(missing_ok=True)  # the run's own parts are gone already
    assert not Path(spec.source.path).exists()
    (runs / pipeline.AUDIT_FILE).unlink()
    pipeline.check_part(pinned, "audit")
    pipeline.merge_checks(pinned)
    audit = json.loads((runs / pipeline.AUDIT_FILE).read_text())
    assert "error" not in audit and audit["epsilon_lower_bound"] <= 3.0


def test_a_release_with_noise_100x_too_small_is_refused_by_the_audit(spec_factory, monkeypatch):
    """The bug in the code that ran (both the release's fit and the audit's): every
    Gaussian draw 100x too small while the budget lines claim the full noise."""
    path = release_with_scaled_noise(spec_factory, monkeypatch)
    with pytest.raises(GateFailedError):
        run.release(path)
    spec = load_spec(path)
    (runs,) = (spec.workspace.path / "runs").iterdir()
    verdict = json.loads((runs / pipeline.VERDICT_FILE).read_text())
    failed = {c["name"] for c in verdict["checks"] if not c["passed"]}
    assert "privacy_audit" in failed
    audit = json.loads((runs / pipeline.AUDIT_FILE).read_text())
    assert audit["epsilon_lower_bound"] > 1.0
