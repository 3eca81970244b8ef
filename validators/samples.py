"""The seeded samples the checks read, and how many rows they hold (:class:`Settings`).

``validators/real.py`` (the trusted reader) draws a :class:`Samples` from the revealed
rows and hands it to each check of the registry (``validators/checks/``); the checks and
the metric modules behind them are pure functions of it. Nothing here reveals rows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from synthrelease.errors import PrivacyError
from synthrelease.generators.domain import Discretiser
from synthrelease.validators.encoding import MixedMatrix, encode_mixed
from synthrelease.validators.features import typed_frame


@dataclass(frozen=True)
class Settings:
    """How much of each table the checks use (seeded subsamples above these sizes).

    ``sample_rows``: rows per table for SDMetrics, TSTR, the plots and the real
    references of the distance-based checks; ``attack_rows``: synthetic rows compared by
    DCR/NNDR, and members / non-members / targets per attack; ``marginal_rows``: rows per
    table for the marginal TVDs and exact copies (cheap, linear work: a larger sample
    keeps sampling noise out of the TVD, which a 10,000-row sample inflates by ~0.007 at
    2-way on Adult); ``max_marginals``: marginals per k-way TVD (drawn at random above
    it); ``singling_out_queries``: predicates the singling-out attacker writes.
    """

    sample_rows: int = 10_000
    attack_rows: int = 2_000
    marginal_rows: int = 50_000
    max_marginals: int = 500
    singling_out_queries: int = 500

    def __post_init__(self) -> None:
        for name in (
            "sample_rows",
            "attack_rows",
            "marginal_rows",
            "max_marginals",
            "singling_out_queries",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")

    @classmethod
    def from_gate(cls, gate: Any) -> Settings:
        sample_rows = int(getattr(gate, "sample_rows", cls.sample_rows))
        return cls(
            sample_rows=sample_rows,
            attack_rows=int(getattr(gate, "attack_rows", cls.attack_rows)),
            marginal_rows=max(sample_rows, cls.marginal_rows),
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "sample_rows": self.sample_rows,
            "attack_rows": self.attack_rows,
            "marginal_rows": self.marginal_rows,
            "max_marginals": self.max_marginals,
            "singling_out_queries": self.singling_out_queries,
        }


@dataclass(frozen=True, eq=False, repr=False)
class Samples:
    """The seeded samples every check reads, built by ``real.evaluate_against_real`` from
    the revealed rows and handed to each check's ``compute``. Holds real rows: no repr of
    them, no pickling, never returned. ``*_all``: every row (declared columns, numbers
    clipped); ``hold_m``/``synth_m``: ``marginal_rows`` random rows; ``hold``/``synth``:
    their first ``sample_rows``; ``train_ref``: a training sample of ``hold``'s size;
    ``train_rows``: the whole training part's row count, where ``train_all`` is the
    pipeline's bounded sample of a larger part (private, like every figure here)."""

    train_all: pd.DataFrame
    hold_all: pd.DataFrame
    hold_m: pd.DataFrame
    synth_m: pd.DataFrame
    hold: pd.DataFrame
    synth: pd.DataFrame
    train_ref: pd.DataFrame
    synthetic: pd.DataFrame  # the synthetic table as given
    discretiser: Discretiser
    specs: Mapping[str, object]
    target: str | None
    settings: Settings
    train_rows: int = 0  # rows of the whole training part (train_all may be a sample of it)

    @functools.cached_property
    def typed_hold(self) -> pd.DataFrame:
        return typed_frame(self.hold, self.specs)

    @functools.cached_property
    def typed_synth(self) -> pd.DataFrame:
        return typed_frame(self.synth, self.specs)

    @functools.cached_property
    def encoded_train(self) -> MixedMatrix:
        return encode_mixed(self.train_ref, self.specs)

    @functools.cached_property
    def encoded_hold(self) -> MixedMatrix:
        return encode_mixed(self.hold, self.specs)

    @functools.cached_property
    def encoded_synth(self) -> MixedMatrix:
        return encode_mixed(self.synth, self.specs)

    def __repr__(self) -> str:
        return "Samples(<real rows hidden>)"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise PrivacyError("refusing to serialise the samples of real rows")


def first(matrix: MixedMatrix, rows: int) -> MixedMatrix:
    """The first ``rows`` rows: a random sample, since every sample here is shuffled."""
    return matrix.take(np.arange(min(rows, matrix.rows)))


def shuffled(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    """A random sample of at most ``limit`` rows, in random order."""
    take = rng.permutation(len(frame))[: max(0, int(limit))]
    return frame.iloc[take].reset_index(drop=True)
