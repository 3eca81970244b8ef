"""The end-to-end guarantee, attacked (issue 12): each test drives one attack an analyst
with spec-writing rights could try, and checks that it learns nothing for free.

- the lifetime budget is pinned in the ledger (a spec edit cannot unlock spending);
- a spec edited between steps does not change the run (one frozen spec per run);
- a seeded spec is refused outside tests, and marked NOT PRIVATE inside them;
- the holdout split keeps add/remove neighbours (one added row never moves another);
- the fitted spend is checked against the reservation, failing closed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from synthrelease import pipeline, run
from synthrelease.cli import main
from synthrelease.errors import BudgetPinnedError, ChargedRunError, PrivacyError, SpecError
from synthrelease.ledger import BudgetLedger
from synthrelease.private.workspace import bernoulli_holdout
from synthrelease.spec import Budget, load_spec
from synthrelease.store import ReleaseStore
from tests.conftest import make_table


def _edit(path, **changes):
    raw = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _entries(spec):
    with BudgetLedger.sqlite(spec.workspace.path / "ledger.sqlite") as led:
        return led.entries(spec.name)


# --------------------------------------------------------------------------- budget pinning
def test_a_spec_cannot_raise_the_lifetime_budget(tmp_path):
    with BudgetLedger.sqlite(tmp_path / "l.sqlite") as led:
        led.commit(
            led.reserve(
                "t", epsilon=1.0, delta=1e-7, budget=Budget(epsilon=1.0, delta=1e-6), run_id="r1"
            )
        )
        # the attack: edit privacy.budget in the YAML to unlock more spending
        with pytest.raises(BudgetPinnedError, match="budget set t"):
            led.reserve(
                "t", epsilon=1.0, delta=1e-7, budget=Budget(epsilon=100.0, delta=1e-6), run_id="r2"
            )
        with pytest.raises(BudgetPinnedError):
            led.check("t", epsilon=0.1, delta=0.0, budget=Budget(epsilon=2.0, delta=1e-6))
        assert led.spent("t") == (1.0, 1e-7) and len(led.entries("t")) == 1
        # the custodian's explicit, recorded change
        led.set_budget("t", epsilon=3.0, delta=1e-6, reason="board approved 2026-11")
        led.reserve(
            "t", epsilon=1.0, delta=1e-7, budget=Budget(epsilon=3.0, delta=1e-6), run_id="r3"
        )
        changes = led.budget_changes("t")
        assert [c.epsilon for c in changes] == [1.0, 3.0]
        assert changes[-1].reason == "board approved 2026-11"
        assert led.budget("t") == Budget(epsilon=3.0, delta=1e-6)


def test_older_ledgers_pin_the_budget_of_their_first_entry(tmp_path):
    from sqlalchemy import update

    from synthrelease.ledger import tables

    with BudgetLedger.sqlite(tmp_path / "l.sqlite") as led:
        led.reserve("t", epsilon=1.0, delta=0.0, budget=Budget(epsilon=2.0, delta=1e-6), run_id="a")
        with led.engine.begin() as conn:  # as a ledger written before pinning existed
            conn.execute(update(tables).values(budget_epsilon=None, budget_delta=None))
        with pytest.raises(BudgetPinnedError):
            led.reserve(
                "t", epsilon=1.0, delta=0.0, budget=Budget(epsilon=9.0, delta=1e-6), run_id="b"
            )


def test_budget_set_and_show_through_the_cli(spec_factory, capsys):
    path = spec_factory()
    spec = load_spec(path)
    run.release(str(path))
    _edit(path, privacy__budget__epsilon=50.0)
    assert main(["run", str(path), "--engine", "direct"]) == 2
    err = capsys.readouterr().err
    assert "lifetime budget of epsilon 10" in err and "Nothing was run" in err
    assert [e.status for e in _entries(spec)] == ["committed"]
    assert (
        main(
            [
                "budget",
                "set",
                "small",
                "--epsilon",
                "50",
                "--delta",
                "1e-5",
                "--reason",
                "more releases approved",
                "--spec",
                str(path),
            ]
        )
        == 0
    )
    assert main(["budget", "show", "--spec", str(path), "--entries"]) == 0
    out = capsys.readouterr().out
    assert "more releases approved" in out and "pinned at the first reservation" in out


# --------------------------------------------------------------------------- frozen spec
def test_a_spec_edited_between_steps_does_not_change_the_run(spec_factory, monkeypatch):
    path = spec_factory()
    original = load_spec(path)
    steps_seen = []

    def watched(name, step):
        def wrapper(run_dir, *args):
            if name == "train":  # the attack: after reserve, point the run elsewhere
                _edit(
                    path,
                    privacy__epsilon=9.0,
                    generator__name="aim",
                    synthetic_rows=10,
                    gate__max_tvd_1way=1.0,
                )
            steps_seen.append(pipeline.PinnedRun.load(run_dir).spec.digest())
            return step(run_dir, *args)

        return wrapper

    for name in ("reserve", "train", "sample", "check", "gate", "publish", "finish"):
        monkeypatch.setattr(run, name, watched(name, getattr(run, name)))
    summary = run.release(str(path))
    assert len(steps_seen) == 7
    assert set(steps_seen) == {original.digest()}  # every step read the frozen copy
    manifest = ReleaseStore(original.store.uri).manifest(*summary.release_id.split("@"))
    assert manifest["privacy"]["epsilon"] == pytest.approx(3.0)
    assert manifest["generator"]["name"] == "mst" and manifest["synthetic_rows"] == 2000
    frozen = original.workspace.path / "runs" / summary.run_id / pipeline.SPEC_FILE
    import hashlib

    assert manifest["run_spec_sha256"] == hashlib.sha256(frozen.read_bytes()).hexdigest()
    assert [e.epsilon for e in _entries(original)] == [3.0]


def test_a_tampered_frozen_spec_is_refused(spec_factory):
    spec = load_spec(spec_factory())
    pinned = pipeline.pin(spec, pipeline.new_run_id())
    frozen = pinned.root / pipeline.SPEC_FILE
    frozen.write_text(frozen.read_text().replace('"epsilon": 3.0', '"epsilon": 0.5'))
    with pytest.raises(PrivacyError, match="frozen spec"):
        pipeline.PinnedRun.load(pinned.root)


# --------------------------------------------------------------------------- one accountant
def test_a_fit_that_spends_more_than_its_reservation_fails_closed(spec_factory, monkeypatch):
    from synthrelease.generators.marginal.mst import MSTGenerator

    path = spec_factory()
    spec = load_spec(path)
    honest = MSTGenerator.fit

    def overspend(self, table, *, noise):
        report = honest(self, table, noise=noise)
        from synthrelease.generators.accounting import BudgetLine, PrivacyReport

        return PrivacyReport.from_lines(
            [*report.lines, BudgetLine("extra", 1.0, "bug")], delta=report.delta
        )

    monkeypatch.setattr(MSTGenerator, "fit", overspend)
    with pytest.raises(ChargedRunError):
        run.release(str(path))
    assert ReleaseStore(spec.store.uri).releases() == []
    assert [e.status for e in _entries(spec)] == ["spent"]
    failure = next((spec.workspace.path / "runs").glob("*/failure.txt")).read_text()
    assert "exceed this run's reservation" in failure


def test_check_spend_recomputes_the_lines():
    line = {"step": "x", "rho": 0.5, "mechanism": "gaussian"}
    ok = {
        "epsilon": 1.0,
        "delta": 1e-6,
        "rho": 0.01,
        "accountant": "zCDP (Canonne-Kamath-Steinke conversion)",
        "lines": [{**line, "rho": 0.01}],
    }
    pipeline.check_spend(ok, epsilon=1.0, delta=1e-6)
    lying = {**ok, "rho": 0.5, "lines": [line]}  # epsilon understated against its own lines
    with pytest.raises(PrivacyError):
        pipeline.check_spend(lying, epsilon=1.0, delta=1e-6)
    with pytest.raises(PrivacyError):
        pipeline.check_spend(ok, epsilon=1.0, delta=1e-7)  # delta over the reservation


# --------------------------------------------------------------------------- seeded noise
def test_a_seeded_spec_is_refused_outside_tests(spec_factory, monkeypatch, capsys):
    path = spec_factory()
    spec = load_spec(path)
    monkeypatch.delenv(pipeline.TEST_NOISE_ENV, raising=False)
    with pytest.raises(SpecError, match="tests only"):
        run.release(str(path))
    assert main(["run", str(path), "--engine", "direct"]) == 2
    assert "SYNTHRELEASE_TEST_NOISE" in capsys.readouterr().err
    assert not (spec.workspace.path / "ledger.sqlite").exists() or _entries(spec) == []


def test_a_seeded_release_says_not_private_first(spec_factory):
    path = spec_factory()
    spec = load_spec(path)
    summary = run.release(str(path))
    name, version = summary.release_id.split("@")
    store = ReleaseStore(spec.store.uri)
    manifest = store.manifest(name, version)
    assert manifest["privacy"]["details"] and manifest["noise"].startswith("seeded")
    first_key = next(iter(manifest))
    assert "NOT PRIVATE" in json.dumps({first_key: manifest[first_key]})
    readme = store.read_verified(name, version, "README.md").decode()
    assert "NOT PRIVATE" in readme.splitlines()[0]
    assert "NOT PRIVATE" in (
        ReleaseStore(spec.store.uri)
        .fs.cat_file(ReleaseStore(spec.store.uri)._p("index.html"))
        .decode()
    )


# --------------------------------------------------------------------------- the split
def test_bernoulli_split_keeps_add_remove_neighbours():
    table = make_table(2000, seed=3)
    key = bytes(range(16))
    base = bernoulli_holdout(table, fraction=0.3, key=key)
    sizes = {
        int(bernoulli_holdout(table, fraction=0.3, key=bytes([k] * 16)).sum()) for k in range(8)
    }
    assert len(sizes) > 1  # the part sizes are random, not round(n * f)
    assert all(480 < s < 720 for s in sizes)
    train = table[~base]
    rng = np.random.default_rng(0)
    for _ in range(20):
        row = make_table(1, seed=int(rng.integers(1_000_000)))
        at = int(rng.integers(0, len(table) + 1))
        bigger = pd.concat([table.iloc[:at], row, table.iloc[at:]], ignore_index=True)
        mask = bernoulli_holdout(bigger, fraction=0.3, key=key)
        old = np.delete(mask, at)
        assert (old == base).all()  # no existing row moved between the parts
        bigger_train = bigger[~mask]
        assert len(bigger_train) - len(train) in (0, 1)
    # a duplicate of an existing row gets its own coin (occurrence number), so it is
    # not forced to follow its twin
    twins = pd.concat([table.iloc[[0]]] * 400, ignore_index=True)
    share = bernoulli_holdout(twins, fraction=0.3, key=key).mean()
    assert 0.2 < share < 0.4


def test_the_manifest_states_the_neighbouring_relation(spec_factory):
    path = spec_factory()
    spec = load_spec(path)
    summary = run.release(str(path))
    manifest = ReleaseStore(spec.store.uri).manifest(*summary.release_id.split("@"))
    assert "add/remove" in manifest["privacy"]["neighbouring"]
    assert "Bernoulli" in manifest["privacy"]["neighbouring"]


# --------------------------------------------------------------------------- independent accountant
def _independent_epsilon(details: dict, delta: float) -> float:
    """The manifest's budget lines recomputed with Google's dp-accounting (RDP): a zCDP
    line rho is a Gaussian of noise multiplier 1/sqrt(2 rho) (RDP alpha * rho); a DP-SGD
    mechanism is a Poisson-subsampled Gaussian composed ``steps`` times."""
    from dp_accounting import dp_event
    from dp_accounting.rdp import RdpAccountant

    accountant = RdpAccountant()
    if "composition" in details:  # DP-SGD: opacus-style history
        assert all(m.get("delta", 0.0) == 0.0 for m in details["composition"])
        for m in details["composition"]:
            event = dp_event.GaussianDpEvent(m["noise_multiplier"])
            if m.get("sample_rate", 1.0) < 1.0:
                event = dp_event.PoissonSampledDpEvent(m["sample_rate"], event)
            accountant.compose(event, int(m.get("steps", 1)))
    else:
        rho = sum(line["rho"] for line in details["lines"])
        accountant.compose(dp_event.GaussianDpEvent(1 / np.sqrt(2 * rho)))
    return accountant.get_epsilon(delta)


DPSGD = {
    "name": "dpsgd",
    "params": {"epochs": 3, "batch_size": 128, "hidden": [32], "bins": 8, "device": "cpu"},
}


@pytest.mark.parametrize(
    "generator",
    [{"name": "mst", "params": {"bins": 16}}, {"name": "aim", "params": {"bins": 8}}, DPSGD],
    ids=["mst", "aim", "dpsgd"],
)
@pytest.mark.parametrize("holdout", ["fraction", "source"])
def test_manifest_epsilon_matches_an_independent_accountant(
    spec_factory, tmp_path, generator, holdout
):
    """For every generator and holdout mode: the manifest states add/remove neighbours
    (which the Bernoulli split keeps, see above) and an epsilon that a second accountant
    library, fed the manifest's own lines, reproduces within 1% (ours is never looser)."""
    extra = {}
    if holdout == "source":
        held = tmp_path / "held.csv"
        make_table(600, seed=9).to_csv(held, index=False)
        extra["holdout"] = {"source": {"kind": "csv", "path": str(held)}}
    path = spec_factory(
        generator=generator,
        gate={
            "max_tvd_1way": 1.0,
            "max_tvd_2way": 1.0,
            "max_tvd_3way": 1.0,
            "min_quality_score": 0.0,
            "min_diagnostic_score": 0.0,
            "max_exact_copy_excess": 1.0,
            "max_near_copy_excess": 1.0,
            "max_dcr_train_share": 1.0,
            "max_nndr_train_share": 1.0,
            "max_mia_auc": 1.0,
            "max_singling_out_risk": 1.0,
            "max_linkability_risk": 1.0,
            "max_inference_risk": 1.0,
            "expectations": False,
        },
        **extra,
    )
    spec = load_spec(path)
    summary = run.release(str(path))
    privacy = ReleaseStore(spec.store.uri).manifest(*summary.release_id.split("@"))["privacy"]
    assert privacy["neighbouring"].startswith("add/remove one row")
    ours = privacy["epsilon"]
    assert ours <= spec.privacy.epsilon * (1 + 1e-9)
    independent = _independent_epsilon(privacy["details"], privacy["delta"])
    assert ours == pytest.approx(independent, rel=0.01)
    assert ours <= independent * (1 + 1e-6)


# --------------------------------------------------------------------------- private channel
def test_interleaved_private_steps_in_threads_say_nothing_in_public(tmp_path, monkeypatch):
    """Two steps in threads of one process (the parallel check), entered and left out of
    order: each one's prints, warnings and logs land in its own run folder, nothing
    reaches the real streams or a public logger, and the streams are restored."""
    import io
    import logging
    import threading
    import time
    import warnings

    from synthrelease.log import OUTPUT_LOG, PRIVATE_LOG, private_channel

    public_out, public_err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", public_out)
    monkeypatch.setattr("sys.stderr", public_err)
    root_records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            root_records.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    folders = {name: tmp_path / name for name in ("a", "b")}
    for folder in folders.values():
        folder.mkdir()

    def step(name: str, start: float, stop: float) -> None:
        time.sleep(start)
        with private_channel(folders[name]):
            print(f"secret-print-{name}")  # noqa: T201 - the step under test prints
            warnings.warn(f"secret-warning-{name}", UserWarning, stacklevel=1)
            logging.getLogger("sklearn.something").warning("secret-third-party-%s", name)
            logging.getLogger("synthrelease.private.test").warning("secret-log-%s", name)
            time.sleep(stop - start)

    try:
        threads = [
            threading.Thread(target=step, args=("a", 0.0, 0.2)),
            threading.Thread(target=step, args=("b", 0.1, 0.5)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        logging.getLogger().removeHandler(keep)
    import sys

    assert sys.stdout is public_out and sys.stderr is public_err  # restored
    assert public_out.getvalue() == "" and public_err.getvalue() == ""
    assert not [r for r in root_records if "secret" in r.getMessage()]
    for name, folder in folders.items():
        other = "b" if name == "a" else "a"
        output = (folder / OUTPUT_LOG).read_text()
        logged = (folder / PRIVATE_LOG).read_text()
        assert f"secret-print-{name}" in output and f"secret-warning-{name}" in output
        assert f"secret-third-party-{name}" in logged and f"secret-log-{name}" in logged
        assert f"secret-print-{other}" not in output and f"-{other}" not in logged


def test_a_spec_cannot_point_its_runs_at_a_fresh_ledger(spec_factory, tmp_path, monkeypatch):
    """The attack: copy a spent table's spec and move its workspace (so its ledger) to an
    empty folder. With the custodian's $SYNTHRELEASE_LEDGER_URL set, the moved spec is
    still charged to, and refused by, the one ledger."""
    from synthrelease.errors import BudgetExceededError
    from synthrelease.ledger import LEDGER_URL_ENV

    monkeypatch.setenv(LEDGER_URL_ENV, f"sqlite:///{tmp_path / 'custodian-ledger.sqlite'}")
    path = spec_factory(
        privacy={
            "epsilon": 6.0,
            "delta": 1e-6,
            "noise": "seeded",
            "seed": 1,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
        }
    )
    run.release(str(path))
    _edit(path, workspace__path=str(tmp_path / "elsewhere"))
    with pytest.raises(BudgetExceededError, match="spent epsilon 6 of 10"):
        run.release(str(path))
    assert not (tmp_path / "elsewhere" / "ledger.sqlite").exists()
