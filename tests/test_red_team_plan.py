"""Red-team probes of issue 14 (``synthrelease plan``, the plan line ``run`` prints,
the DP draft's row count and types, the new utility figures, SDMetrics NaN handling).

Each test drives one attack against a public channel and asserts the property the
threat model claims. Two were confirmed findings (F1: the DP draft's empty numeric
column; F2: the published sample-equivalence fraction), fixed with this file; their
tests guard the fixes.

Run: ``SYNTHRELEASE_TEST_NOISE=1 .venv/bin/pytest -q tests/test_red_team_plan.py``
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthrelease.cli import main
from synthrelease.generators.accounting import cdp_eps, cdp_rho
from synthrelease.generators.noise import NoiseSource
from synthrelease.ledger import BudgetLedger
from synthrelease.planning.simulate import STANDINS
from synthrelease.spec import load_spec
from tests.conftest import ROOT, make_table

DOOMED_GATE = {"max_tvd_1way": 0.9, "max_tvd_2way": 0.001, "max_exact_copy_excess": 0.05}
LIKELY_GATE = {"max_tvd_1way": 0.2, "max_tvd_2way": 0.3, "max_exact_copy_excess": 0.05}


# --------------------------------------------------------------------------- helpers
def _tables(tmp_path: Path) -> dict[str, Path | None]:
    """A; B = A minus its last row (add/remove neighbours); C = an unrelated table with
    other columns; 'missing' = a path that does not exist."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    a = make_table(3000, seed=0)
    paths: dict[str, Path | None] = {}
    for name, frame in (
        ("A", a),
        ("B", a.iloc[:-1]),
        ("C", pd.DataFrame({"q": np.arange(50), "r": ["z"] * 50})),
    ):
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    paths["missing"] = folder / "no-such-table.csv"
    return paths


def _spec(spec_factory, tmp_path: Path, tag: str, source: Path, **overrides: Any) -> Path:
    """The small test spec (conftest's ``spec_factory``) over ``source``, with a declared
    row count and a workspace (so a fresh plan cache) and store of its own per ``tag``."""
    return spec_factory(
        source={"kind": "csv", "path": str(source)},
        expected_rows=3000,
        workspace={"path": str(tmp_path / f"ws-{tag}")},
        store={"uri": str(tmp_path / f"store-{tag}")},
        **overrides,
    )


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


_CLOCK = re.compile(r"^\d\d:\d\d:\d\d ", re.MULTILINE)
_SECONDS = re.compile(r"\d+(\.\d+)? s\b")


def _normalised(stderr: str) -> str:
    """stderr without wall-clock stamps and durations (timing is outside the guarantee)."""
    return _SECONDS.sub("<t> s", _CLOCK.sub("", stderr))


def _ledger_entries(workspace: Path) -> list[Any]:
    path = workspace / "ledger.sqlite"
    if not path.exists():
        return []
    ledger = BudgetLedger.sqlite(path)
    try:
        return ledger.entries()
    finally:
        ledger.close()


class _NoRead:
    """Makes every table reader pandas offers fail, and counts the attempts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("read_csv", "read_parquet", "read_sql", "read_sql_query", "read_sql_table"):
            monkeypatch.setattr(pd, name, self._refuse(name))

    def _refuse(self, name: str):
        def refuse(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            raise AssertionError(f"pd.{name} called before the reservation")

        return refuse


# --------------------------------------------------------------------------- Q1: the plan
def test_refusal_is_identical_for_neighbouring_other_and_missing_tables(
    capsys, spec_factory, tmp_path, monkeypatch
):
    """A doomed spec (gate tighter than the sampling floor): `run --engine direct` prints
    the plan line and refuses with exit 2 - byte for byte the same whether the source is
    A, its neighbour B, an unrelated table, or absent - and charges nothing."""
    tables = _tables(tmp_path)
    seen = {}
    for tag, source in tables.items():
        assert source is not None
        spec = _spec(spec_factory, tmp_path, tag, source, gate=DOOMED_GATE)
        code, out, err = _cli(capsys, "run", str(spec), "--engine", "direct")
        seen[tag] = (code, out, _normalised(err))
        assert _ledger_entries(tmp_path / f"ws-{tag}") == []  # nothing reserved
        assert not (tmp_path / f"ws-{tag}" / "runs").exists()
    first = seen["A"]
    assert first[0] == 2
    assert first[1].startswith("plan: mst at epsilon 3 on about 3,000 rows (declared)")
    assert "CANNOT be expected to pass" in first[1]
    assert "nothing was read or charged" in first[2]
    for tag, value in seen.items():
        assert value == first, tag


def test_plan_line_before_a_run_reads_nothing_and_is_the_same_for_neighbours(
    capsys, spec_factory, tmp_path, monkeypatch
):
    """A spec whose plan passes: everything `run` prints up to the moment it hands over to
    `run.release` (which reserves, then reads) is the same for A, B, an unrelated table
    and a missing file; no table reader is called before that hand-over."""
    from synthrelease import run as run_module
    from synthrelease.errors import SpecError

    tables = _tables(tmp_path)
    handed_over: list[str] = []

    def stub(spec_path: str) -> None:
        handed_over.append(spec_path)
        raise SpecError("red-team stub: the run would reserve and read from here")

    monkeypatch.setattr(run_module, "release", stub)
    no_read = _NoRead(monkeypatch)
    seen = {}
    for tag, source in tables.items():
        assert source is not None
        spec = _spec(spec_factory, tmp_path, tag, source)
        code, out, err = _cli(capsys, "run", str(spec), "--engine", "direct")
        seen[tag] = (code, out, _normalised(err))
    assert no_read.calls == []
    assert len(handed_over) == len(tables)
    first = seen["A"]
    assert first[1].startswith("plan: mst at epsilon 3 on about 3,000 rows (declared)")
    assert "gate likely to pass" in first[1] and "red-team stub" in first[2]
    for tag, value in seen.items():
        assert value == first, tag


def test_plan_command_is_a_function_of_the_spec_only(capsys, spec_factory, tmp_path, monkeypatch):
    """`synthrelease plan --fresh --json` (no cache) is identical when the source file is
    A, B, an unrelated table, or deleted; no table reader is called."""
    tables = _tables(tmp_path)
    no_read = _NoRead(monkeypatch)
    plans = {}
    for tag, source in tables.items():
        assert source is not None
        spec = _spec(spec_factory, tmp_path, tag, source)
        code, out, _ = _cli(capsys, "plan", str(spec), "--fresh", "--json")
        assert code == 0, tag
        plan = json.loads(out)
        plan.pop("fit_seconds")  # wall-clock time of the stand-in fit
        plans[tag] = plan
    assert no_read.calls == []
    for tag, plan in plans.items():
        assert plan == plans["A"], tag
    assert not any((tmp_path / f"ws-{t}" / "plans").exists() for t in tables)  # --fresh


def test_the_cache_a_plain_draft_leaves_is_what_the_spec_alone_gives(capsys, tmp_path, monkeypatch):
    """`spec draft` reads the rows and then plans (gate_for_draft) into the workspace's
    plans/ cache, which `run` later trusts. The cached plan must equal a fresh plan of the
    drafted spec computed with the table deleted: nothing of the rows beyond the spec."""
    data = tmp_path / "t.csv"
    make_table(1500, seed=3).to_csv(data, index=False)
    ws = tmp_path / "ws"
    out = tmp_path / "drafted.yaml"
    code, _, _ = _cli(
        capsys,
        "spec", "draft", str(data), "--name", "t", "--output", str(out),
        "--workspace", str(ws), "--target", "smoker",
    )  # fmt: skip
    assert code == 0
    plans = list((ws / "plans").glob("*.json"))
    assert len(plans) == STANDINS  # the draft's own plan (one simulation a stand-in), cached
    data.unlink()
    code, cached, _ = _cli(capsys, "plan", str(out), "--json")
    assert code == 0
    code, fresh, _ = _cli(capsys, "plan", str(out), "--json", "--fresh")
    assert code == 0
    cached_plan, fresh_plan = json.loads(cached), json.loads(fresh)
    for plan in (cached_plan, fresh_plan):
        plan.pop("fit_seconds")
    assert cached_plan == fresh_plan
    assert cached_plan["rows_provenance"] == "drafted from the rows, NOT DP"


def test_nothing_after_the_reservation_can_write_a_plan():
    """Only the CLI (before reserving), `plan` and `spec draft` reach the planning
    package: the pipeline, the run and the flows never import it, so no step that reads
    rows can write into <workspace>/plans, which `run` trusts."""
    roots = [ROOT / "synthrelease" / "pipeline", ROOT / "flows", ROOT / "validators"]
    files = [p for r in roots for p in r.rglob("*.py")] + [ROOT / "synthrelease" / "run.py"]
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.startswith("synthrelease.planning") or n == "synthrelease.cli.plan"
                   for n in names):  # fmt: skip
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# --------------------------------------------------------------------------- Q2: DP draft
class _SpyNoise(NoiseSource):
    """A seeded noise source that records every Gaussian draw's scale and size."""

    def __init__(self, seed: int) -> None:
        super().__init__(mode="seeded", seed=seed)
        object.__setattr__(self, "draws", [])

    def normal(self, scale, size):  # type: ignore[override]
        self.draws.append((float(scale), int(np.prod(size))))
        return super().normal(scale, size)


def test_dp_draft_spends_exactly_one_entry_and_its_gaussians_fit_in_it(tmp_path, monkeypatch):
    """`spec draft --dp 1 --dp-delta 1e-8` with the row count measured: one ledger entry
    of exactly (1, 1e-8); every Gaussian the draft draws (sensitivity 1: rho = 1/(2
    sigma^2)) adds up to the zCDP total that (1, 1e-8/2) allows - the count included - and
    the partition-selection deltas fit in the other half of delta."""
    from synthrelease.private import draft as draft_module
    from synthrelease.private.draft_dp import plan_dp_draft

    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    spy = _SpyNoise(11)
    monkeypatch.setattr(draft_module, "draft_noise", lambda seed: spy)
    rng = np.random.default_rng(1)
    n = 8000
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "score": rng.normal(0, 1.5, n).round(3),
            "dept": rng.choice(["it", "ops", "sales"], n),
        }
    )
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    ws = tmp_path / "ws"
    raw = draft_module.draft_spec(
        data, name="t", output=tmp_path / "t.yaml", dp=1.0, dp_delta=1e-8, workspace=ws, seed=1
    )
    (entry,) = _ledger_entries(ws)
    assert (entry.dataset, entry.epsilon, entry.delta, entry.status) == ("t", 1.0, 1e-8, "spent")
    assert raw["provenance"]["expected_rows"] == "dp"
    assert abs(raw["expected_rows"] - n) < 200 and raw["expected_rows"] == int(raw["expected_rows"])
    total = cdp_rho(epsilon=1.0, delta=1e-8 / 2)
    spent = math.fsum(1.0 / (2.0 * s * s) for s, _ in spy.draws)
    assert (sum(1 for _, size in spy.draws if size == 1)) == 1  # the row count's one draw
    assert spent <= total * (1 + 1e-9)
    assert cdp_eps(rho=spent, delta=1e-8 / 2) <= 1.0 + 1e-9
    plan = plan_dp_draft(epsilon=1.0, delta=1e-8, columns=3, count=True)
    assert plan.rho_count > 0 and 3 * plan.rho_column + plan.rho_count == pytest.approx(total)
    assert 3 * plan.delta_column + 1e-8 / 2 <= 1e-8 * (1 + 1e-12)
    # The manifest's guarantee adds the draft's entry: the spec records exactly it.
    assert raw["provenance"]["domain_estimate"]["epsilon"] == 1.0
    assert raw["provenance"]["domain_estimate"]["delta"] == 1e-8


def test_dp_draft_outcome_of_an_all_null_numeric_column_survives_one_row(tmp_path, monkeypatch):
    """Neighbours: A has a numeric column that is all null (CSV: float64); B is A plus one
    row holding 5 there (still float64: the dtype does not change). The DP draft's public
    outcome (the column it writes, or the error it prints) should not be a deterministic
    function of that one row."""
    from synthrelease.errors import SynthReleaseError
    from synthrelease.private.draft import draft_spec

    monkeypatch.setenv("SYNTHRELEASE_TEST_NOISE", "1")
    rng = np.random.default_rng(0)
    n = 3000
    a = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "dept": rng.choice(["a", "b", "c"], n),
            "x": [np.nan] * n,
        }
    )
    b = pd.concat([a, pd.DataFrame({"age": [40], "dept": ["a"], "x": [5.0]})], ignore_index=True)
    outcomes = {}
    for tag, frame in (("A", a), ("B", b)):
        path = tmp_path / f"{tag}.csv"
        frame.to_csv(path, index=False)
        assert str(pd.read_csv(path)["x"].dtype) == "float64"  # same dtype in both
        try:
            raw = draft_spec(
                path, name="t", output=tmp_path / f"{tag}.yaml", dp=1.0,
                expected_rows=3000, workspace=tmp_path / f"ws-{tag}", seed=3,
            )  # fmt: skip
            outcomes[tag] = ("ok", raw["schema"]["columns"]["x"]["type"])
        except SynthReleaseError as exc:
            outcomes[tag] = ("error", type(exc).__name__)
    assert outcomes["A"] == outcomes["B"], outcomes


# --------------------------------------------------------------------------- Q3: figures
def _training_rows_from(fraction: float, *, about: float) -> set[int]:
    """What a reader of the published fraction can solve for: the training part's sizes
    ``n`` consistent with a match clamped to the smallest sample (the fraction is then
    ``max(10, ceil(n / 1000)) / n``), within 10% of a public approximation ``about`` (the
    spec's expected_rows times 1 - holdout fraction, say)."""
    out = set()
    for low in range(1, 2000):
        n = round(low / fraction)
        if n >= 1 and abs(low / fraction - n) < 1e-6 and max(10, math.ceil(n / 1000)) == low:
            if abs(n - about) <= 0.1 * about:
                out.add(n)
    return out


def test_published_sample_equivalence_does_not_give_the_training_row_count(spec_factory, tmp_path):
    from synthrelease.generators.domain import Discretiser
    from synthrelease.private.table import SensitiveTable
    from synthrelease.validators import real
    from synthrelease.validators.datasheet import build_datasheet, datasheet_markdown
    from tests.test_privacy_attacks import COLUMNS, population

    rng = np.random.default_rng(5)
    n = 23_456  # the training part's size: a count of the real table
    train, holdout = population(rng, n), population(rng, 2000)
    poor = pd.DataFrame({c: rng.permutation(train[c].to_numpy())[:1500] for c in train})
    poor["c"], poor["d"] = "c0", "p"  # a poor synthetic table: clamped below
    ev = real.evaluate_against_real(
        train=SensitiveTable(train, label="t"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=poor,
        discretiser=Discretiser(COLUMNS, default_bins=8),
        target=None,
        rng=np.random.default_rng(3),
        only=["sample_equivalence"],
    )
    assert ev.figures["equivalent_sample_clamp"] == -1
    spec = load_spec(spec_factory(gate={**LIKELY_GATE, "publish_figures": True}))
    sheet = build_datasheet(
        spec=spec,
        privacy={"epsilon": 3.0, "delta": 1e-6},
        verdict={"passed": True, "checks": []},
        synthetic=make_table(200),
        figures=ev.figures,
    )
    text = json.dumps(sheet) + datasheet_markdown(sheet)
    assert "equivalent_sample_rows" not in text  # the intended exclusion holds ...
    published = sheet["real_data_figures"]["figures"]["equivalent_sample_fraction"]
    # ... and a clamped match publishes no fraction (it would give n back: exactly,
    # next to a rough public figure)
    assert published is None
    assert _training_rows_from(ev.figures["equivalent_sample_fraction"], about=23_000) == {n}
    assert "smallest random sample" in sheet["real_data_figures"]["headline"]["sample_equivalence"]


def test_a_matched_published_fraction_has_one_significant_digit():
    from synthrelease.validators.datasheet import coarse_fraction

    assert coarse_fraction(0.04237, 0) == 0.04
    assert coarse_fraction(0.4237, 0) == 0.4
    assert coarse_fraction(0.04237, -1) is None and coarse_fraction(0.9, 1) is None


def test_new_real_data_figures_stay_out_of_the_datasheet_without_opt_in(spec_factory):
    from synthrelease.errors import PrivacyError
    from synthrelease.validators.datasheet import build_datasheet, datasheet_markdown

    spec = load_spec(spec_factory(gate={**LIKELY_GATE, "publish_figures": False}))
    figures = {
        "equivalent_sample_fraction": 0.0123,
        "equivalent_sample_rows": 290.0,
        "tstr_score_low": 0.7,
        "kmarginal_score": 912.0,
    }
    with pytest.raises(PrivacyError):
        build_datasheet(
            spec=spec,
            privacy={"epsilon": 3.0, "delta": 1e-6},
            verdict={"passed": True, "checks": [], "figures": figures},
            synthetic=make_table(200),
            figures=figures,
        )
    sheet = build_datasheet(
        spec=spec,
        privacy={"epsilon": 3.0, "delta": 1e-6},
        verdict={"passed": True, "checks": [], "figures": figures},  # smuggled: dropped
        synthetic=make_table(200),
    )
    text = json.dumps(sheet) + datasheet_markdown(sheet)
    for word in (*figures, "0.0123", "290", "912"):
        assert word not in text, word


# --------------------------------------------------------------------------- Q4: SDMetrics
def _sdm_frames() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    from synthrelease.spec import CategoricalColumn, NumericalColumn

    rng = np.random.default_rng(0)
    n = 400
    a = rng.uniform(0, 10, n)
    specs: dict[str, object] = {
        "a": NumericalColumn(type="numerical", lower=0, upper=10),
        "b": NumericalColumn(type="numerical", lower=0, upper=20),
        "c": CategoricalColumn(type="categorical", categories=["x", "y", "z"]),
    }
    real = pd.DataFrame({"a": a, "b": a + rng.uniform(0, 2, n), "c": ["z"] * n})  # c constant
    synthetic = pd.DataFrame(
        {"a": a, "b": a + rng.uniform(0, 2, n), "c": rng.choice(["x", "y", "z"], n)}
    )
    return real, synthetic, specs


@pytest.mark.parametrize("metric", ["CorrelationSimilarity", "ContingencySimilarity"])
def test_a_crashing_sdmetrics_metric_still_fails_the_quality_score(monkeypatch, metric):
    """The new exemptions (pairs below the association threshold, constant real columns)
    must not swallow a metric that raised: the quality score is NaN (the gate fails),
    including for a pair that touches the constant column."""
    import sdmetrics.column_pairs as pairs

    from synthrelease.validators.sdmetrics_reports import _problems, sdmetrics_figures

    real, synthetic, specs = _sdm_frames()
    figures, _ = sdmetrics_figures(real=real, synthetic=synthetic, specs=specs)
    assert math.isfinite(figures["quality_score"])  # the baseline scores

    def boom(cls, real_data, synthetic_data, **kwargs):
        raise RuntimeError("metric crashed")

    monkeypatch.setattr(getattr(pairs, metric), "compute_breakdown", classmethod(boom))
    figures, details = sdmetrics_figures(real=real, synthetic=synthetic, specs=specs)
    assert math.isnan(figures["quality_score"]), figures
    assert details.get("quality_problems")
    # unit level: an errored row on a constant column is a problem, a NaN without error is not
    table = pd.DataFrame(
        {
            "Column 1": ["a", "a"],
            "Column 2": ["c", "b"],
            "Metric": ["CorrelationSimilarity"] * 2,
            "Score": [np.nan, 0.9],
            "Error": ["RuntimeError: boom", None],
        }
    )
    assert _problems(table, constant=frozenset({"c"})) == ["CorrelationSimilarity: a, c"]
    table["Error"] = [None, None]
    assert _problems(table, constant=frozenset({"c"})) == []
    assert _problems(table, constant=frozenset()) == ["CorrelationSimilarity: a, c"]
