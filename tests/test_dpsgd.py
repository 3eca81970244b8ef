"""The dpsgd generator: exact per-row clipping, fit/sample/save/load, bad input, resume
without double charging, a membership-inference check, and a pipeline run. Small and
seeded: CPU only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import TypeAdapter

from synthrelease.errors import GeneratorError
from synthrelease.generators import build_generator, load_generator
from synthrelease.generators.dpsgd.accounting import DPSGDReport, epsilon_of
from synthrelease.generators.dpsgd.generator import DPSGDGenerator
from synthrelease.generators.dpsgd.model import MADE, book_keeping_grads
from synthrelease.generators.dpsgd.nonprivate import fit_nonprivate
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column, GeneratorSpec
from tests.conftest import SMALL_COLUMNS, make_table

COLUMNS = {n: TypeAdapter(Column).validate_python(c) for n, c in SMALL_COLUMNS.items()}
FAST = {"epochs": 3, "batch_size": 256, "hidden": [32, 32], "bins": 8, "device": "cpu"}


def _gen(epsilon: float = 3.0, **params) -> DPSGDGenerator:
    return DPSGDGenerator(COLUMNS, epsilon=epsilon, delta=1e-6, params={**FAST, **params})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> SensitiveTable:
    return SensitiveTable(make_table(2000), label="small")


@pytest.fixture(scope="module")
def fitted(table) -> DPSGDGenerator:
    gen = _gen()
    gen.fit(table, noise=NoiseSource.seeded(1))
    return gen


# --------------------------------------------------------------------------- clipping
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_book_keeping_equals_clipping_each_row_by_hand():
    """The DP mechanism itself: norms and clipped sums against a per-row autograd loop."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    codes = torch.stack(
        [
            torch.randint(0, k, (12,), generator=torch.Generator().manual_seed(k))
            for k in (3, 5, 2, 4)
        ],
        1,
    )
    ref = MADE([3, 5, 2, 4], hidden=[6, 7], generator=torch.Generator().manual_seed(0))
    per_row = []
    for i in range(len(codes)):
        ref.zero_grad()
        ref.nll(codes[i : i + 1]).sum().backward()
        per_row.append([p.grad.clone() for p in ref.parameters()])
    norms = torch.stack([torch.sqrt(sum((g * g).sum() for g in row)) for row in per_row])
    clip = float(norms.median())
    coef = (clip / (norms + 1e-6)).clamp(max=1.0)
    want = [sum(coef[i] * per_row[i][j] for i in range(len(codes))) for j in range(len(per_row[0]))]

    model = MADE([3, 5, 2, 4], hidden=[6, 7], generator=torch.Generator().manual_seed(0))
    gsm = GradSampleModuleFastGradientClipping(
        model, loss_reduction="sum", strict=False, max_grad_norm=clip
    )
    model.set_book_keeping(True)
    model.nll(codes).sum().backward()
    got_coef = gsm.get_clipping_coef()
    assert torch.allclose(gsm.get_norm_sample(), norms, rtol=1e-4)
    book_keeping_grads(model.masked_layers, got_coef)
    for p, w in zip(model.parameters(), want):
        assert torch.allclose(p.grad, w, rtol=1e-4, atol=1e-6)
    assert (got_coef < 1).any() and (got_coef == 1).any()  # both regimes were exercised


def test_autoregressive_masks_hide_later_columns():
    model = MADE([3, 4, 2], hidden=[8], generator=torch.Generator().manual_seed(0))
    x = model.one_hot(torch.tensor([[0, 1, 1]]))
    y = model.one_hot(torch.tensor([[2, 1, 0]]))  # differs in columns 1 and 3
    with torch.no_grad():
        assert torch.equal(model(x)[:, :3], model(y)[:, :3])  # column 1: depends on nothing
        assert not torch.equal(model(x)[:, 3:7], model(y)[:, 3:7])  # column 2 sees column 1


# --------------------------------------------------------------------------- fit/sample
def test_fit_spends_exactly_its_budget_and_records_it(fitted):
    report = fitted.report
    assert isinstance(report, DPSGDReport)
    assert 3.0 * 0.99 <= report.epsilon <= 3.0 and report.delta == 1e-6
    t = report.training
    for key in (
        "sample_rate",
        "noise_multiplier",
        "steps",
        "max_grad_norm",
        "accountant",
        "delta_accountant",
        "expected_batch_size",
    ):
        assert key in t
    assert [line.step for line in report.lines] == ["row count", "DP-SGD training"]
    history = [(m.noise_multiplier, m.sample_rate, m.steps) for m in report.composition]
    assert history[-1] == (t["noise_multiplier"], t["sample_rate"], t["steps"])
    assert epsilon_of(history, delta=t["delta_accountant"]) == pytest.approx(report.epsilon)
    assert t["steps"] == 3 * round(1 / t["sample_rate"])


def test_sample_is_in_the_declared_domain(fitted):
    out = fitted.sample(500, rng=np.random.default_rng(0))
    assert list(out.columns) == list(COLUMNS) and len(out) == 500
    assert out["age"].between(0, 100).all() and set(out["colour"]) <= {"red", "green", "blue"}
    assert set(out["city"].dropna()) <= {"a", "b", "c", "other"}
    assert fitted.sample(0, rng=np.random.default_rng(0)).shape == (0, len(COLUMNS))


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["arrays.npz", "generator.json"]
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype == np.float32 for k in npz.files)
    doc = json.loads((tmp_path / "m" / "generator.json").read_text())
    assert (
        doc["report"]["training"]["noise_multiplier"] == fitted.report.training["noise_multiplier"]
    )
    for loaded in (DPSGDGenerator.load(tmp_path / "m"), load_generator(tmp_path / "m")):
        assert isinstance(loaded.report, DPSGDReport)
        assert loaded.report.to_dict() == fitted.report.to_dict()
        a = fitted.sample(300, rng=np.random.default_rng(5))
        b = loaded.sample(300, rng=np.random.default_rng(5))
        pd.testing.assert_frame_equal(a, b)


def test_registry_builds_dpsgd_and_validates_params():
    gen = build_generator(
        GeneratorSpec(name="dpsgd", params={"epochs": 2}), COLUMNS, epsilon=1.0, delta=1e-6
    )
    assert isinstance(gen, DPSGDGenerator) and gen.params.epochs == 2
    with pytest.raises(GeneratorError, match="bogus"):
        _gen(bogus=1)
    with pytest.raises(GeneratorError, match="max_grad_norm"):
        _gen(max_grad_norm=0)


def test_secure_noise_source_trains(table):
    gen = _gen(epochs=1)
    report = gen.fit(table, noise=NoiseSource.secure())  # opacus secure_mode on
    assert report.epsilon <= 3.0


# --------------------------------------------------------------------------- bad input
def test_nan_loss_fails_the_fit_and_returns_no_model(table, monkeypatch):
    real = MADE.nll
    monkeypatch.setattr(MADE, "nll", lambda self, codes: real(self, codes) * float("nan"))
    gen = _gen(epochs=1)
    with pytest.raises(GeneratorError, match="NaN"):
        gen.fit(table, noise=NoiseSource.seeded(0))
    assert not gen.fitted and gen.model is None
    with pytest.raises(GeneratorError, match="not fitted"):
        gen.sample(5, rng=np.random.default_rng(0))


def test_unreachable_epsilon_suggests_settings(table):
    gen = _gen(epsilon=0.05, epochs=200, batch_size=1500)
    with pytest.raises(GeneratorError, match="unreachable.*fewer 'epochs'"):
        gen.fit(table, noise=NoiseSource.seeded(0))
    assert not gen.fitted


# --------------------------------------------------------------------------- resume
class _Stop(Exception):
    pass


def test_resume_continues_the_same_accountant_state(table, tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    first = _gen(epochs=4)

    def stop_at_epoch_2(info):
        if info.epoch >= 2:
            raise _Stop

    with pytest.raises(_Stop):
        first.fit(table, noise=NoiseSource.seeded(3), checkpoint=ck, progress=stop_at_epoch_2)
    from synthrelease.generators.dpsgd.checkpoint import load_checkpoint

    meta, _ = load_checkpoint(ck)
    plan = meta["plan"]
    assert meta["step"] == plan["per_epoch"]  # the epoch-1 checkpoint survived
    with pytest.raises(GeneratorError, match="another configuration"):
        _gen(epsilon=2.0, epochs=4).fit(table, noise=NoiseSource.seeded(3), checkpoint=ck)

    # Resuming measures nothing again (the plan would charge the DP count twice) ...
    monkeypatch.setattr(DPSGDGenerator, "_plan", lambda *a, **k: pytest.fail("re-measured"))
    seen = []
    second = _gen(epochs=4)
    report = second.fit(table, noise=NoiseSource.seeded(4), checkpoint=ck, progress=seen.append)
    # ... and continues the step count and the accountant where it stopped.
    assert seen[0].step == 2 * plan["per_epoch"] and seen[-1].step == plan["steps"]
    assert seen[0].epsilon == pytest.approx(
        epsilon_of(
            [(m["noise_multiplier"], m["sample_rate"], m["steps"]) for m in plan["mechanisms"]]
            + [(plan["noise_multiplier"], plan["sample_rate"], 2 * plan["per_epoch"])],
            delta=plan["delta_accountant"],
        )
    )
    assert [m.to_dict() for m in report.composition[:-1]] == plan["mechanisms"]
    assert report.training["steps"] == plan["steps"] and report.epsilon <= 3.0
    assert not (ck / "checkpoint.npz").exists()  # a finished fit cannot be resumed again


# --------------------------------------------------------------------------- attack
def _uniform_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"c{j}": rng.choice(list("abcdefgh"), n) for j in range(8)})


def test_membership_inference_catches_the_non_private_model_only():
    from sklearn.metrics import roc_auc_score

    columns = {
        f"c{j}": TypeAdapter(Column).validate_python(
            {"type": "categorical", "categories": list("abcdefgh")}
        )
        for j in range(8)
    }
    members, others = _uniform_table(200, 0), _uniform_table(200, 1)
    params = {
        "epochs": 60,
        "batch_size": 50,
        "hidden": [64, 64],
        "lr": 0.01,
        "device": "cpu",
        "max_noise_multiplier": 100,
    }
    labels = np.r_[np.ones(200), np.zeros(200)]

    def auc(gen):  # loss (likelihood) threshold attack: members are more likely
        return roc_auc_score(labels, np.r_[gen.log_likelihood(members), gen.log_likelihood(others)])

    plain = fit_nonprivate(
        DPSGDGenerator(columns, epsilon=1.0, delta=1e-5, params=params), members, seed=0
    )
    private = DPSGDGenerator(columns, epsilon=1.0, delta=1e-5, params=params)
    private.fit(SensitiveTable(members, label="members"), noise=NoiseSource.seeded(0))
    assert auc(plain) > 0.75
    assert auc(private) <= 0.6
    with pytest.raises(GeneratorError, match="without DP cannot be saved"):
        plain.save("never-written")


# --------------------------------------------------------------------------- pipeline
def test_pipeline_release_with_dpsgd(spec_factory):
    from synthrelease.spec import load_spec
    from synthrelease.store import ReleaseStore
    from tests.test_pipeline import run_all

    params = {"epochs": 10, "batch_size": 128, "hidden": [64, 64], "bins": 16, "device": "cpu"}
    path = spec_factory(generator={"name": "dpsgd", "params": params})
    spec = load_spec(path)
    release_id, _ = run_all(path)
    manifest = ReleaseStore(spec.store.uri).manifest(*release_id.split("@"))
    privacy = manifest["privacy"]
    assert privacy["epsilon"] <= 3.0 and privacy["accountant"].startswith("RDP")
    assert privacy["details"]["training"]["max_grad_norm"] == 1.0
    assert manifest["generator"]["name"] == "dpsgd"


def test_pipeline_release_with_undeclared_domains(spec_factory):
    """Bounds and categories left out of the schema: the pipeline passes
    privacy.domain_share to the generator, which estimates them with DP (charged lines);
    the release publishes, and the checks use the DP-resolved domain."""
    import copy

    from synthrelease.spec import load_spec
    from synthrelease.store import ReleaseStore
    from tests.conftest import SMALL_COLUMNS
    from tests.test_pipeline import run_all

    columns = copy.deepcopy(SMALL_COLUMNS)
    columns["age"] = {"type": "numerical", "integer": True}  # no lower/upper
    columns["colour"] = {"type": "categorical"}  # no category set
    params = {"epochs": 5, "batch_size": 128, "hidden": [64, 64], "bins": 16, "device": "cpu"}
    path = spec_factory(
        schema={"columns": columns},
        generator={"name": "dpsgd", "params": params},
        privacy={
            "epsilon": 3.0,
            "delta": 1e-6,
            "budget": {"epsilon": 10.0, "delta": 1e-5},
            "noise": "seeded",
            "seed": 7,
            "domain_share": 0.1,
        },
    )
    spec = load_spec(path)
    release_id, _ = run_all(path)
    store = ReleaseStore(spec.store.uri)
    manifest = store.manifest(*release_id.split("@"))
    lines = manifest["privacy"]["details"]["lines"]
    steps = " | ".join(line["step"] for line in lines).lower()
    assert "bounds" in steps and "categor" in steps, steps
    assert manifest["privacy"]["epsilon"] <= 3.0
    df = store.load_table(*release_id.split("@"))
    public = manifest["schema"]["columns"]
    assert set(public["colour"]["categories"]) <= {"red", "green", "blue"}  # DP-discovered
    assert public["age"]["lower"] is not None and public["age"]["upper"] is not None
    assert set(df["colour"].dropna().unique()) <= {*public["colour"]["categories"], "other"}
    assert df["age"].between(0, 200).all()
