"""What the marginal generators (MST, AIM) share: the discretised domain, with optional
DP quantile bin edges (a budget line of their own, :mod:`.dp_edges`), and a fitted
discrete model sampled with the caller's rng and decoded.

Reads no rows itself: the quantile histograms come from the trusted encoder
(``marginal.data.encode_rows``) and reach :func:`dp_edges.noisy_edges` only to be noised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from pydantic import Field

from synthrelease.errors import GeneratorError
from synthrelease.generators import dp_edges
from synthrelease.generators.accounting import BudgetLine
from synthrelease.generators.base import DPGenerator, GeneratorParams
from synthrelease.generators.domain import DEFAULT_BINS, Discretiser
from synthrelease.generators.dp_domain import public_count
from synthrelease.generators.marginal.data import encode_rows
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CountedCodes, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column


@dataclass(frozen=True)
class NoisyMarginal:
    """One noisy marginal a fit measured (a DP output), kept in memory for the privacy
    audit's white-box attack (``validators/audit``); never saved or published.

    ``columns``: indices into the discretiser's columns; ``maps``: per column, full-domain
    code -> measured cell (compressed domains merge cells); ``y``: the noisy counts, flat
    in C order over the measured cells; ``sigma``: the noise scale the fit claims."""

    columns: tuple[int, ...]
    maps: tuple[np.ndarray, ...]
    y: np.ndarray
    sigma: float

    def cells(self, codes: np.ndarray) -> np.ndarray:
        """The measured cell (flat index) of each row of ``codes`` (rows x all columns)."""
        flat = np.zeros(codes.shape[0], dtype=np.int64)
        for column, m in zip(self.columns, self.maps):
            flat = flat * (int(m.max()) + 1) + m[codes[:, column]]
        return flat


class MarginalParams(GeneratorParams):
    """Domain parameters shared by MST and AIM."""

    bins: int = Field(default=DEFAULT_BINS, ge=2, le=1024, description="bins per numeric column")
    quantile_edges: tuple[str, ...] = Field(
        default=(), description="numeric columns whose bin edges are DP quantiles (charged)"
    )
    quantile_share: float = Field(
        default=0.05, gt=0, lt=0.5, description="share of the budget for the quantile edges"
    )


class FittedModel(Protocol):
    """What the marginal generators need of a fitted model (TreeModel, GraphicalModel)."""

    @property
    def maps(self) -> tuple[np.ndarray, ...]: ...

    @property
    def total(self) -> float: ...

    def sample_codes(self, num_rows: int, rng: np.random.Generator) -> np.ndarray: ...

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> FittedModel: ...


class MarginalGenerator(DPGenerator):
    """Base of MST and AIM: ``self.model`` (``sample_codes``, ``total``, ``maps``) over
    ``self.discretiser``."""

    model: FittedModel | None = None
    model_class: ClassVar[type[FittedModel]]  # the fitted model's type: to_state / from_state
    discretiser: Discretiser
    params: MarginalParams

    def _init_domain(self) -> None:
        """Check ``quantile_edges`` (before any data) and build the declared domain."""
        dp_edges.check_columns(self.columns, self.params.quantile_edges)
        self.timings: dict[str, float] = {}  # fit seconds by phase (profiling, never logged)
        self.learned_edges: dict[str, tuple[float, ...]] = {}  # DP quantile edges (fit)
        self.measured: tuple[NoisyMarginal, ...] = ()  # the fit's noisy marginals (audit)
        self.discretiser = Discretiser(self.columns, default_bins=self.params.bins)

    @property
    def reads_codes(self) -> bool:
        """Counts are all MST and AIM read: they train from the code store, unless DP
        quantile edges must first be measured on a finer grid than the store's."""
        return not self.params.quantile_edges

    @property
    def counts_only(self) -> bool:
        """MST and AIM measure marginal counts and nothing else of the rows."""
        return self.reads_codes

    @property
    def resolved_columns(self) -> dict[str, Column]:
        """The declared columns with the DP-learned edges filled in (public after fit)."""
        return {
            n: c.model_copy(update={"edges": self.learned_edges[n], "bins": None})
            if n in self.learned_edges
            else c
            for n, c in self.columns.items()
        }

    def _learn_edges(
        self,
        table: SensitiveTable | SensitiveCodes | CountedCodes,
        *,
        rho: float,
        noise: NoiseSource,
    ) -> BudgetLine:
        """DP quantile edges for ``quantile_edges`` (one budget line); rebuilds the domain."""
        names = list(self.params.quantile_edges)
        grid = dp_edges.grid_columns(self.columns, names)
        if not isinstance(table, SensitiveTable):
            raise GeneratorError("DP quantile edges are measured on the rows, not the code store")
        codes = encode_rows(table, Discretiser(grid))
        assert isinstance(codes, np.ndarray)
        sigma = dp_edges.sigma_for(rho, len(names))
        learned: dict[str, tuple[float, ...]] = {}
        for i, name in enumerate(names):
            spec = dp_edges.numerical(self.columns, name)
            bounds = dp_edges.grid_boundaries(name, spec)
            counts = np.bincount(codes[i], minlength=bounds.size + 1)[: bounds.size].astype(float)
            edges = dp_edges.noisy_edges(
                counts, bounds, spec, bins=spec.bins or self.params.bins, sigma=sigma, noise=noise
            )
            if edges:  # none: the noisy mass sits in one grid cell; keep uniform bins
                learned[name] = edges
        del codes
        self.learned_edges = learned
        self.discretiser = Discretiser(self.resolved_columns, default_bins=self.params.bins)
        return dp_edges.quantile_line(len(names), sigma)

    def _edges_state(self) -> dict[str, Any]:
        return {"learned_edges": {n: list(e) for n, e in self.learned_edges.items()}}

    def _restore_edges(self, meta: Mapping[str, Any]) -> None:
        try:
            learned = {
                str(n): tuple(float(x) for x in e)
                for n, e in dict(meta.get("learned_edges", {})).items()
            }
            if not set(learned) <= set(self.params.quantile_edges):
                raise ValueError
            self.learned_edges = learned
            self.discretiser = Discretiser(self.resolved_columns, default_bins=self.params.bins)
        except (TypeError, ValueError, AttributeError):
            raise GeneratorError("the stored quantile edges are malformed") from None

    @property
    def estimated_rows(self) -> float:
        """The DP estimate of the training row count (a DP output, safe to use), an
        integer >= 1: the fit rounds it before the model uses or stores it."""
        self._require_fitted()
        assert self.model is not None
        return public_count(self.model.total)

    def sample(self, num_rows: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``num_rows`` decoded rows from the fitted model (post-processing; reads no data)."""
        num_rows = self._check_rows(num_rows)
        self._require_fitted()
        if not isinstance(rng, np.random.Generator):
            raise GeneratorError("sample takes rng=numpy.random.Generator")
        assert self.model is not None
        codes = self.model.sample_codes(num_rows, rng)
        frame = pd.DataFrame({n: codes[i] for i, n in enumerate(self.discretiser.names)})
        return self.discretiser.decode(frame, rng)

    def _check_model_shape(self, model: FittedModel) -> None:
        """A loaded model must fit the loaded column spec, cell for cell."""
        if len(model.maps) != len(self.discretiser.names) or any(
            m.size != s for m, s in zip(model.maps, self.discretiser.sizes.values())
        ):
            raise GeneratorError("the stored model does not match the stored column spec")

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.model is not None
        meta, arrays = self.model.to_state()
        meta.update(self._edges_state())
        return meta, arrays

    def _restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.model = model = self.model_class.from_state(meta, arrays)
        self._restore_edges(meta)
        self._check_model_shape(model)
