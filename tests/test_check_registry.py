"""One declaration per check: the registry (validators/checks/) and everything derived from
it (the evaluation's units of work, the gate's tables, the spec's gate fields, the docs
table) stay in step."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from synthrelease.errors import PrivacyError
from synthrelease.generators.domain import Discretiser
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Gate
from synthrelease.validators import real
from synthrelease.validators.checks import REGISTRY, SUITES, owner, thresholds
from synthrelease.validators.checks.base import CheckDef, Threshold
from synthrelease.validators.checks.docs import markdown_table, replace_table, table_in
from synthrelease.validators.evaluation import CHECKS, Settings
from synthrelease.validators.gate import (
    DESCRIPTIONS,
    EXPECTATIONS_CHECK,
    TARGET_CHECKS,
    THRESHOLD_CHECKS,
)
from tests.test_privacy_attacks import COLUMNS, population

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "sample_rows",
    "real_rows",
    "attack_rows",
    "publish_figures",
    "audit_canaries",
}  # Gate fields that gate nothing


def test_names_figures_and_fields_are_unique():
    names = [c.name for c in REGISTRY] + [s.name for s in SUITES]
    assert len(names) == len(set(names))
    figures = [f for c in REGISTRY for f in c.figures]
    assert len(figures) == len(set(figures)), "two checks produce the same figure"
    fields = [t.field for t in thresholds()] + [s.field for s in SUITES]
    assert len(fields) == len(set(fields)) and not set(fields) & SETTINGS


def test_the_order_of_the_checks_is_pinned():
    """Each check draws from a child generator spawned in this order: reordering the
    registry would change every seeded figure."""
    assert CHECKS == (
        "marginals_and_copies",
        "marginals_3way",
        "plots",
        "sdmetrics",
        "tstr",
        "distance",
        "membership",
        "singling_out",
        "linkability",
        "inference",
        "sample_equivalence",
    )
    assert CHECKS == tuple(c.name for c in REGISTRY)


def test_every_gated_figure_has_its_gate_field_with_the_declared_default():
    """The spec (base layer) cannot import the registry (engines): its Gate fields are
    written by hand, and kept in step here."""
    fields = Gate.model_fields
    for t in thresholds():
        assert t.field in fields, (
            f"add to Gate in synthrelease/spec/sections.py: "
            f"{t.field}: float = Field(default={t.default!r}, ge=0, le=1)"
        )
        info = fields[t.field]
        assert info.annotation is float and info.default == t.default, t.field
        assert type(t.default) is float
        assert Gate.model_validate({t.field: t.default}).model_dump()[t.field] == t.default
    for suite in SUITES:
        assert fields[suite.field].default is suite.default
    declared = {t.field for t in thresholds()} | {s.field for s in SUITES} | SETTINGS
    assert set(fields) == declared, "a Gate field that no check declares"


def test_the_gate_tables_are_the_registry():
    assert THRESHOLD_CHECKS == tuple((t.figure, t.field, t.bound) for t in thresholds())
    utility = [name for name, _, _ in THRESHOLD_CHECKS[:6]]
    assert utility == [
        "tvd_1way",
        "tvd_2way",
        "tvd_3way",
        "quality_score",
        "diagnostic_score",
        "tstr_gap",
    ]  # verdict order: utility first
    assert all(t.kind == "privacy" for t in thresholds()[6:])
    assert TARGET_CHECKS == {"tstr_gap"}
    assert EXPECTATIONS_CHECK == "expectations"
    assert set(DESCRIPTIONS) == {n for n, _, _ in THRESHOLD_CHECKS} | {
        EXPECTATIONS_CHECK,
        "privacy_audit",
    }
    assert all(DESCRIPTIONS.values())


def test_the_evaluation_produces_exactly_the_declared_figures():
    """Every figure the evaluation produces is declared by the check that produced it,
    and every gated figure is produced (without target: all but the TSTR ones)."""
    rng = np.random.default_rng(5)
    train, holdout, fresh = population(rng, 300), population(rng, 300), population(rng, 300)
    settings = Settings(sample_rows=200, attack_rows=50, max_marginals=5, singling_out_queries=30)
    kwargs = dict(
        train=SensitiveTable(train, label="t"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=fresh,
        discretiser=Discretiser(COLUMNS, default_bins=6),
        settings=settings,
    )
    full = real.evaluate_against_real(target="c", rng=np.random.default_rng(1), **kwargs)
    assert full.errors == {}
    assert set(full.figures) == {f for c in REGISTRY for f in c.figures}
    assert {n for n, _, _ in THRESHOLD_CHECKS} <= set(full.figures)
    assert all(math.isfinite(full.figures[n]) for n, _, _ in THRESHOLD_CHECKS)
    for check in REGISTRY:  # one check alone: its figures, the same values
        if check.name in ("sdmetrics", "tstr"):
            continue  # slow; covered by the whole run above
        alone = real.evaluate_against_real(
            target="c", rng=np.random.default_rng(1), only=[check.name], **kwargs
        )
        assert alone.figures == {f: full.figures[f] for f in check.figures}, check.name
    no_target = real.evaluate_against_real(
        target=None, rng=np.random.default_rng(1), only=["tstr", "membership"], **kwargs
    )
    assert set(no_target.figures) == set(owner("mia_auc").figures)


def test_a_check_that_returns_too_little_fails_closed(monkeypatch):
    rng = np.random.default_rng(6)
    train, holdout, fresh = population(rng, 100), population(rng, 100), population(rng, 100)
    broken = CheckDef(
        name="plots",
        figures=("association_gap", "extra_gap"),
        compute=lambda samples, rng: ({"association_gap": 0.1}, {}),
    )
    monkeypatch.setattr(
        real, "REGISTRY", tuple(broken if c.name == "plots" else c for c in REGISTRY)
    )
    evaluation = real.evaluate_against_real(
        train=SensitiveTable(train, label="t"),
        holdout=SensitiveTable(holdout, label="h"),
        synthetic=fresh,
        discretiser=Discretiser(COLUMNS, default_bins=6),
        target=None,
        rng=np.random.default_rng(0),
        only=["plots"],
    )
    assert evaluation.errors == {"plots": "MissingFigure"}
    assert math.isnan(evaluation.figures["extra_gap"])


def test_the_docs_table_is_the_rendered_registry():
    text = (ROOT / "docs" / "validation.md").read_text()
    table = table_in(text)
    assert table is not None, "docs/validation.md lost the markers of the checks table"
    assert table == markdown_table(), (
        "docs/validation.md's checks table differs from the registry; run "
        "`python -m synthrelease.validators.checks.docs --write docs/validation.md`"
    )
    assert replace_table(text, markdown_table()) == text
    for check in REGISTRY:
        for module in check.uses:
            assert (ROOT / "validators" / module).is_file(), module
        assert (
            ROOT / "validators" / "checks" / f"{check.compute.__module__.rsplit('.', 1)[-1]}.py"
        ).is_file()


def test_a_new_check_is_one_declaration():
    """A declaration alone reaches the evaluation order, the thresholds and the docs."""
    new = CheckDef(
        name="toy",
        figures=("toy_gap", "toy_detail"),
        compute=lambda samples, rng: ({"toy_gap": 0.0, "toy_detail": 1.0}, {}),
        gates=(Threshold("toy_gap", "max", 0.25, "utility", description="a toy gap"),),
        uses=("utility.py",),
    )
    registry = (*REGISTRY, new)
    assert thresholds(registry)[6].figure == "toy_gap"  # after the other utility checks
    assert thresholds(registry)[6].field == "max_toy_gap"
    assert owner("toy_detail", registry) is new
    assert "| `toy_gap` | `max_toy_gap` | max | 0.25 | a toy gap |" in markdown_table(registry)


def test_declarations_are_checked():
    with pytest.raises(ValueError):
        Threshold("x", "below", 0.1, "utility", description="bad bound")
    with pytest.raises(ValueError):
        CheckDef(
            name="x",
            figures=("a",),
            compute=lambda s, r: ({}, {}),
            gates=(Threshold("b", "max", 0.1, "utility", description="?"),),
        )
    with pytest.raises(ValueError):
        CheckDef(name="x", figures=("a", "a"), compute=lambda s, r: ({}, {}))


def test_the_samples_hide_rows_and_refuse_pickling(monkeypatch):
    seen = []
    plots = next(c for c in REGISTRY if c.name == "plots")
    spy = CheckDef(
        name="plots",
        figures=plots.figures,
        compute=lambda samples, rng: (seen.append(samples), plots.compute(samples, rng))[1],
    )
    monkeypatch.setattr(real, "REGISTRY", tuple(spy if c.name == "plots" else c for c in REGISTRY))
    frame = population(np.random.default_rng(2), 50)
    real.evaluate_against_real(
        train=SensitiveTable(frame, label="t"),
        holdout=SensitiveTable(frame, label="h"),
        synthetic=frame,
        discretiser=Discretiser(COLUMNS, default_bins=4),
        target=None,
        rng=np.random.default_rng(0),
        only=["plots"],
    )
    (samples,) = seen
    assert repr(samples) == "Samples(<real rows hidden>)"
    with pytest.raises(PrivacyError):
        pickle.dumps(samples)
