"""``dpsgd``: a deep autoregressive tabular generator trained with DP-SGD (opacus).

Recipe of :meth:`DPSGDGenerator.fit` (budget plan in ``accounting.plan_budget``):

1. DP row count (Gaussian, ``count_share`` of the budget, rounded to an integer before
   anything uses it): the Poisson sample rate is ``q = batch_size / count`` rounded DOWN
   to a multiple of 2^-40 (``randomness.public_sample_rate``), and that same q is both
   what the sampler draws with and what the accountant composes; the exact count is
   only the population the sampler draws from.
2. Undeclared domains (opt-in, ``privacy.domain_share``): DP bounds / DP category
   discovery in ``dp_domain``, one budget line each; values outside are clipped / bucketed.
3. Encode the rows on the (now fully public) domain: numbers binned from their bounds.
4. Calibrate the noise multiplier so that the composition of 1-3 and ``steps = epochs *
   round(1/q)`` Poisson-sampled DP-SGD steps is exactly within (epsilon, delta) under the
   chosen accountant (RDP default, PRV optional); an unreachable target is an error.
5. Train a MADE network (``model``) for exactly those steps (``train``), on CPU or a
   GPU, each step's Poisson batch drawn by index (``randomness.poisson_indices``:
   O(batch), not O(rows)) and only the batch moved to the device.

Where the rows come from (``batches``): with every domain declared, :attr:`reads_codes`
is True and the pipeline hands ``fit`` its code store (a ``SensitiveCodes`` of the
training part), which must carry this generator's own discretisation (names and sizes,
else GeneratorError); its rows are counted once (``SensitiveCodes.random_access``) and
each batch is gathered from its memory-mapped column files, so a step costs the same at
1M and 100M rows. A ``SensitiveTable`` is encoded into one tensor on the device (the
only way where a domain is DP-estimated from the rows). From the same rows and seeds,
both draw the same batches and give the same report and model.

CPU threads: ``threads`` (default 1) for the fit and ``sample``, restored after; see
``train.cpu_threads`` for why more threads stall on a busy machine.

**Sensitive rows**: :func:`_encode_rows` and :meth:`DPSGDGenerator._open_store` (here)
and the measurements in ``dp_domain`` read them. Noise source: the DP count and domains
draw from the NoiseSource; Poisson sampling and the DP-SGD Gaussian noise draw from
generators (``randomness.StepRandomness``) that, with a secure NoiseSource, are re-keyed
from ``os.urandom`` before every step (>= 128 fresh bits per stream per step) and, with
a seeded one, are seeded once from it. The training loss (``log_loss``), throughput and
the step of a NaN abort are not DP: they go only to the ``synthrelease.private.dpsgd``
logger.
Checkpoints (``fit(..., checkpoint=dir)``) hold the plan and the model: resuming in the
same run continues the same steps and the same accountant state and measures nothing
again, so the run's single ledger reservation covers it (see ``checkpoint``). Training
without DP (benchmarks, attack tests) lives apart, in ``nonprivate``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from synthrelease.errors import GeneratorError, SchemaMismatchError
from synthrelease.generators import dp_domain
from synthrelease.generators.base import (
    META_FILE,
    DPGenerator,
    GeneratorParams,
    columns_from_json,
    columns_to_json,
)
from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
from synthrelease.generators.dpsgd import checkpoint as ckpt
from synthrelease.generators.dpsgd.accounting import (
    DPSGDReport,
    Mechanism,
    calibrate_noise,
    epsilon_of,
    plan_budget,
)
from synthrelease.generators.dpsgd.batches import Batches, StoreBatches, TensorBatches
from synthrelease.generators.dpsgd.model import MADE
from synthrelease.generators.dpsgd.randomness import StepRandomness, public_sample_rate
from synthrelease.generators.dpsgd.train import (
    LoopConfig,
    Progress,
    cpu_threads,
    select_device,
    train_loop,
    use_autocast,
)
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CountedCodes, RowAccess, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column

logger = logging.getLogger(__name__)
private_logger = logging.getLogger("synthrelease.private.dpsgd")  # private workspace only
Width = Annotated[int, Field(ge=1, le=8192)]


class DPSGDParams(GeneratorParams):
    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(default=1024, ge=1, le=10_000_000, description="expected Poisson batch")
    lr: float = Field(default=3e-3, gt=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0, le=1e4, description="per-row clipping norm C")
    hidden: tuple[Width, ...] = Field(default=(256, 256), min_length=1, max_length=8)
    bins: int = Field(default=DEFAULT_BINS, ge=2, le=1024, description="bins per numeric column")
    device: Literal["cpu", "cuda", "auto"] = "auto"
    amp: Literal["auto", "on", "off"] = Field(
        default="auto", description="bf16 autocast (auto: GPU)"
    )
    accountant: Literal["rdp", "prv"] = "rdp"
    max_noise_multiplier: float = Field(default=20.0, gt=0, le=1000)
    count_share: float = Field(
        default=0.01, gt=0, lt=0.5, description="budget share of the DP row count"
    )
    checkpoint_every: int = Field(default=0, ge=0, description="steps; 0: once per epoch")
    log_loss: bool = Field(
        default=False,
        description="log the (non-DP) training loss to "
        "the private log (synthrelease.private.dpsgd)",
    )
    ema: float = Field(default=0.0, ge=0, lt=1, description="return an average of the iterates")
    threads: int = Field(
        default=1,
        ge=0,
        le=1024,
        description="torch's CPU threads during fit and sample (0: torch's default, one per "
        "core). 1: on a busy machine more threads stall in OpenMP barriers (train.cpu_threads)",
    )


def _encode_rows(table: SensitiveTable, disc: Discretiser, clip: Mapping[str, Any]) -> np.ndarray:
    """READS SENSITIVE ROWS: integer codes (rows, columns); DP-estimated bounds clip."""
    missing = [n for n in disc.names if n not in table.columns]
    if missing:
        raise SchemaMismatchError(f"the table lacks declared column(s): {', '.join(missing)}")
    frame = dp_domain.clip_to_bounds(table.reveal()[disc.names], clip)
    return disc.encode(frame).to_numpy(dtype=np.int64)


class DPSGDGenerator(DPGenerator):
    """DP-SGD MADE generator over the declared (or DP-estimated) domain."""

    name = "dpsgd"
    Params = DPSGDParams
    params: DPSGDParams
    estimates_domains: ClassVar[bool] = True

    def __init__(
        self,
        columns: Mapping[str, Column],
        *,
        epsilon: float,
        delta: float,
        params: Mapping[str, Any] | None = None,
        domain_share: float = 0.0,
    ) -> None:
        super().__init__(columns, epsilon=epsilon, delta=delta, params=params)
        if not 0 <= float(domain_share) < 0.5:
            raise GeneratorError("dpsgd: domain_share must be in [0, 0.5)")
        open_ = [n for n, c in self.columns.items() if dp_domain.undeclared(c)]
        if open_ and domain_share <= 0:
            raise GeneratorError(
                f"dpsgd: column(s) {', '.join(map(repr, open_))} declare no bounds/categories "
                "and no budget share is set to estimate them; declare them or set "
                "privacy.domain_share"
            )
        self.domain_share = float(domain_share)
        self.discretiser = (
            None if open_ else Discretiser(self.columns, default_bins=self.params.bins)
        )
        self._estimates = bool(open_)  # a DP domain to estimate: reads rows, not codes
        self.model: MADE | None = None
        self.private = True
        self.init_seed: int | None = None  # the fit's, in memory only (the privacy audit)

    # ------------------------------------------------------------------ helpers
    @property
    def reads_codes(self) -> bool:
        """Every domain declared: ``fit`` trains from the pipeline's code store, reading
        each batch by index (nothing to estimate from the rows themselves)."""
        return not self._estimates

    def _fingerprint(self) -> str:
        p = self.params.model_dump(
            mode="json", exclude={"device", "amp", "log_loss", "checkpoint_every", "threads"}
        )
        doc = {
            "columns": columns_to_json(self.columns),
            "epsilon": self.epsilon,
            "delta": self.delta,
            "params": p,
            "share": self.domain_share,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _open_store(self, codes: SensitiveCodes) -> RowAccess:
        """READS SENSITIVE ROWS: the code store by row index, once its discretisation is
        checked against this generator's own (GeneratorError if they differ)."""
        disc = self.discretiser
        if disc is None or codes.names != disc.names or codes.sizes != list(disc.sizes.values()):
            raise GeneratorError(
                "dpsgd: the code store's columns or domain sizes are not this generator's "
                "discretisation of the declared columns"
            )
        return codes.random_access()

    def _plan(self, table: SensitiveTable | RowAccess, noise: NoiseSource) -> dict[str, Any]:
        """Steps 1-2 and 4 of the recipe: DP measurements and public arithmetic."""
        p = self.params
        open_ = {n: c for n, c in self.columns.items() if dp_domain.undeclared(c)}
        n_cat = sum(1 for c in open_.values() if getattr(c, "type", "") == "categorical")
        bp = plan_budget(
            epsilon=self.epsilon,
            delta=self.delta,
            count_share=p.count_share,
            domain_share=self.domain_share,
            numeric_undeclared=len(open_) - n_cat,
            categorical_undeclared=n_cat,
        )
        if isinstance(table, SensitiveTable):
            rows = dp_domain.dp_row_count(table, rho=bp.rho_count, noise=noise)
        else:
            rows = dp_domain.dp_count(table.count, rho=bp.rho_count, noise=noise)
        mechs = [
            Mechanism("row count", "Gaussian (sensitivity 1)", (2 * bp.rho_count) ** -0.5, 1.0, 1)
        ]
        columns = dict(self.columns)
        if open_:
            assert isinstance(table, SensitiveTable)  # reads_codes is False: rows were passed
            columns, spent = dp_domain.resolve_columns(
                table,
                self.columns,
                rho_each=bp.rho_per_domain,
                delta_each=bp.delta_per_category,
                noise=noise,
            )
            mechs += [
                Mechanism(
                    step,
                    "Gaussian partition selection" if d else "Gaussian histogram",
                    (2 * rho) ** -0.5,
                    1.0,
                    1,
                    delta=d,
                )
                for step, rho, d in spent
            ]
        q = public_sample_rate(p.batch_size / rows)  # the q sampled AND accounted
        per_epoch = max(1, round(1.0 / q))
        steps = p.epochs * per_epoch
        delta_acc = self.delta - sum(m.delta for m in mechs)
        sigma = calibrate_noise(
            prior=[m.entry() for m in mechs],
            sample_rate=q,
            steps=steps,
            epsilon=self.epsilon,
            delta=delta_acc,
            accountant=p.accountant,
            max_noise=p.max_noise_multiplier,
        )
        return {
            "columns": columns_to_json(columns),
            "estimated": sorted(open_),
            "rows": rows,
            "sample_rate": q,
            "per_epoch": per_epoch,
            "steps": steps,
            "noise_multiplier": sigma,
            "delta_accountant": delta_acc,
            "mechanisms": [m.to_dict() for m in mechs],
            "init_seed": int(noise.post_processing_rng().integers(2**62)),
        }

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        table: SensitiveTable | SensitiveCodes | CountedCodes,  # codes: where reads_codes
        *,
        noise: NoiseSource,
        checkpoint: Path | str | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> DPSGDReport:
        self._check_fit_args(table, noise)
        with cpu_threads(self.params.threads), ExitStack() as stack:
            if isinstance(table, CountedCodes):  # refused by _check_fit_args: counts only
                raise GeneratorError("dpsgd reads rows, not counts")
            rows = (
                table
                if isinstance(table, SensitiveTable)
                else stack.enter_context(self._open_store(table))
            )
            return self._fit(rows, noise=noise, checkpoint=checkpoint, progress=progress)

    def _fit(
        self,
        table: SensitiveTable | RowAccess,
        *,
        noise: NoiseSource,
        checkpoint: Path | str | None,
        progress: Callable[[Progress], None] | None,
    ) -> DPSGDReport:
        p, device = self.params, select_device(self.params.device)
        ckdir = Path(checkpoint) if checkpoint is not None else None
        stored = ckpt.load_checkpoint(ckdir) if ckdir is not None else None
        if stored is not None:
            meta, arrays = stored
            if meta.get("fingerprint") != self._fingerprint():
                raise GeneratorError(f"{ckdir}: the checkpoint belongs to another configuration")
            plan, start = meta["plan"], int(meta["step"])
            logger.info(
                "dpsgd: resuming at step %d of %d; nothing is measured again", start, plan["steps"]
            )
        else:
            arrays, plan, start = {}, self._plan(table, noise), 0
        columns = columns_from_json(plan["columns"])
        mechs = [Mechanism(**m) for m in plan["mechanisms"]]
        q, steps, sigma = plan["sample_rate"], plan["steps"], plan["noise_multiplier"]
        if q != public_sample_rate(q) or plan["rows"] != dp_domain.public_count(plan["rows"]):
            raise GeneratorError(
                f"{ckdir}: the checkpoint predates the public rounding of "
                "the DP row count and sample rate; start afresh"
            )
        expected = q * plan["rows"]
        logger.info(
            "dpsgd: %d steps at sample rate %.4g (expected batch %.0f), noise multiplier "
            "%.4g, clip %g, accountant %s, device %s",
            steps,
            q,
            expected,
            sigma,
            p.max_grad_norm,
            p.accountant,
            device.type,
        )
        disc = Discretiser(columns, default_bins=p.bins)
        clip = {n: columns[n] for n in plan["estimated"]}
        batches: Batches = (
            TensorBatches(torch.from_numpy(_encode_rows(table, disc, clip)).to(device))
            if isinstance(table, SensitiveTable)
            else StoreBatches(table, device)
        )
        model = MADE(
            list(disc.sizes.values()),
            hidden=p.hidden,
            generator=torch.Generator().manual_seed(plan["init_seed"]),
        )
        opt_state = averaged = None
        if stored is not None:
            model.load_state_dict(ckpt.module_state(arrays, "model."))
        model = model.to(device)
        if stored is not None:
            opt_state, averaged = ckpt.training_state(meta, arrays, model, device)
        prior = [m.entry() for m in mechs]

        def epsilon_at(done: int) -> float:
            return epsilon_of(
                prior + [(sigma, q, done)], delta=plan["delta_accountant"], accountant=p.accountant
            )

        def report_progress(info: Progress) -> None:
            logger.info(
                "dpsgd: epoch %.0f/%d, step %d/%d, epsilon %.4g of %.4g",
                info.epoch,
                p.epochs,
                info.step,
                info.steps,
                info.epsilon or 0.0,
                self.epsilon,
            )
            # not DP (the loss is a statistic of the rows, the speed depends on real batch
            # sizes): the private workspace log only
            loss = f", loss {info.loss:.4f} (not DP)" if info.loss is not None else ""
            private_logger.info(
                "dpsgd: step %d/%d, %.0f rows/s%s", info.step, info.steps, info.rows_per_s, loss
            )
            if progress is not None:
                progress(info)

        def save(done: int, net: MADE, opt: torch.optim.Optimizer, avg: list) -> None:
            assert ckdir is not None
            ckpt.save_training(
                ckdir,
                {"fingerprint": self._fingerprint(), "plan": plan, "step": done},
                net,
                opt,
                avg,
            )

        cfg = LoopConfig(
            steps=steps,
            sample_rate=q,
            expected_batch=expected,
            noise_multiplier=sigma,
            max_grad_norm=p.max_grad_norm,
            lr=p.lr,
            amp=use_autocast(p.amp, device),
            steps_per_epoch=plan["per_epoch"],
            report_every=plan["per_epoch"] * max(1, round(p.epochs / 20)),
            checkpoint_every=(p.checkpoint_every or plan["per_epoch"]) if ckdir else 0,
            log_loss=p.log_loss,
            secure=noise.is_secure,
            ema=p.ema,
        )
        train_loop(
            model,
            batches,
            cfg,
            start_step=start,
            optimizer_state=opt_state,
            randomness=StepRandomness.from_noise(noise, device),
            epsilon_at=epsilon_at,
            on_checkpoint=save if ckdir else None,
            averaged=averaged,
            on_progress=report_progress,
        )
        del batches
        training = {
            "sample_rate": q,
            "noise_multiplier": sigma,
            "steps": steps,
            "max_grad_norm": p.max_grad_norm,
            "expected_batch_size": expected,
            "dp_row_count": plan["rows"],
            "epochs": p.epochs,
            "sampling": "Poisson",
            "accountant": p.accountant,
            "neighbouring": "add/remove one row",
        }
        report = DPSGDReport.build(
            mechs + [Mechanism("DP-SGD training", "Poisson-subsampled Gaussian", sigma, q, steps)],
            delta=self.delta,
            accountant=p.accountant,
            training=training,
        )
        self.columns, self.discretiser, self.model = columns, disc, model.cpu()
        self.init_seed = int(plan["init_seed"])
        self.report = report
        if ckdir is not None and (ckdir / ckpt.ARRAYS).exists():
            (ckdir / ckpt.ARRAYS).unlink()  # a finished fit must not be resumed again
        return report

    # ------------------------------------------------------------------ use
    def _ready(self) -> tuple[MADE, Discretiser]:
        if self.model is None or self.discretiser is None:
            raise GeneratorError(f"generator {self.name!r} is not fitted")
        return self.model, self.discretiser

    def initial_direct_weights(self) -> np.ndarray | None:
        """The ``direct`` layer's weights this fit started from, rebuilt from its
        initialisation seed (post-processing randomness, kept in memory only): the
        privacy audit reads how far each weight moved. None after a load."""
        seed = self.init_seed
        if seed is None or self.model is None:
            return None
        start = MADE(
            self.model.sizes,
            hidden=self.params.hidden,
            generator=torch.Generator().manual_seed(int(seed)),
        )
        return start.direct.weight.detach().double().numpy()

    def sample(self, num_rows: int, *, rng: np.random.Generator) -> pd.DataFrame:
        num_rows = self._check_rows(num_rows)
        if not isinstance(rng, np.random.Generator):
            raise GeneratorError("sample takes rng=numpy.random.Generator")
        model, disc = self._ready()
        device = select_device(self.params.device)
        gen = torch.Generator(device).manual_seed(int(rng.integers(2**62)))
        with cpu_threads(self.params.threads):
            codes = model.to(device).sample(num_rows, generator=gen).cpu().numpy()
        model.cpu()
        return disc.decode(pd.DataFrame(codes, columns=disc.names), rng)

    def log_likelihood(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row log-likelihood under the model (nats), for attack tests and checks."""
        model, disc = self._ready()
        codes = disc.encode(dp_domain.clip_to_bounds(frame[disc.names], self.columns))
        codes = codes.to_numpy(np.int64)
        with torch.no_grad():
            return -model.nll(torch.from_numpy(codes)).numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path | str) -> Path:
        if not self.private:
            raise GeneratorError("dpsgd: a model trained without DP cannot be saved")
        return super().save(path)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        model, _ = self._ready()
        return {"sizes": model.sizes}, ckpt.module_arrays(model.state_dict(), "model.")

    def _restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        disc = Discretiser(self.columns, default_bins=self.params.bins)
        sizes = list(disc.sizes.values())
        if list(meta.get("sizes", [])) != sizes:
            raise GeneratorError("the stored model does not match the stored column spec")
        model = MADE(sizes, hidden=self.params.hidden, generator=torch.Generator().manual_seed(0))
        try:
            model.load_state_dict(ckpt.module_state(arrays, "model."))
        except RuntimeError:
            raise GeneratorError("the stored model arrays do not match its architecture") from None
        self.model, self.discretiser = model.eval(), disc

    @classmethod
    def load(cls, path: Path | str) -> DPSGDGenerator:
        gen = super().load(path)
        doc = json.loads((Path(path) / META_FILE).read_text())
        gen.report = DPSGDReport.from_dict(doc["report"])
        return gen  # type: ignore[return-value]
