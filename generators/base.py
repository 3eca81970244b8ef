"""The interface every DP generator implements (MST, AIM, DP-SGD).

SDV-style: ``Gen(columns, epsilon=, delta=, params=)`` -> ``fit(table, noise=)`` (the
only step that reads sensitive rows, inside the generator's own trusted module) ->
``sample(num_rows, rng=)`` -> ``save(dir)`` / ``load(dir)``.

A saved generator is a directory holding ``generator.json`` (name, format version,
budget, params, the public column spec, the privacy report and the subclass metadata)
and ``arrays.npz`` (numbers only, loaded with ``allow_pickle=False``). No pickles.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from synthrelease.errors import GeneratorError
from synthrelease.generators.accounting import PrivacyReport
from synthrelease.generators.noise import NoiseSource
from synthrelease.private.codes import CountedCodes, SensitiveCodes
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Column

logger = logging.getLogger(__name__)
# The loggers a fit writes to: its public progress lines and its private ones.
FIT_LOGGERS = (
    "synthrelease.generators",
    "synthrelease.private.mst",
    "synthrelease.private.aim",
    "synthrelease.private.dpsgd",
)

FORMAT_VERSION = 1
META_FILE = "generator.json"
ARRAYS_FILE = "arrays.npz"
_COLUMN = TypeAdapter(Column)


def columns_to_json(columns: Mapping[str, Column]) -> dict[str, Any]:
    """The public column spec as JSON-able dicts (what a saved generator stores)."""
    return {n: _COLUMN.dump_python(c, mode="json") for n, c in columns.items()}


def columns_from_json(raw: Mapping[str, Any]) -> dict[str, Column]:
    """Inverse of :func:`columns_to_json` (raises pydantic's ValidationError)."""
    return {n: _COLUMN.validate_python(c) for n, c in raw.items()}


@contextmanager
def quiet_fits() -> Iterator[None]:
    """The generators' INFO lines (selected tree, rounds, epochs) silenced, for fits on
    public stand-ins (the plan's simulation, the privacy audit's surrogate) whose
    progress would read like a real run's. Only the generators' own loggers (not the
    private channel's other loggers: a concurrent check keeps its lines); nested or
    overlapping uses restore the levels when the last one ends."""
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_levels.clear()
            for name in FIT_LOGGERS:
                lg = logging.getLogger(name)
                _quiet_levels[name] = lg.level
                lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for name, level in _quiet_levels.items():
                    logging.getLogger(name).setLevel(level)


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_levels: dict[str, int] = {}


class GeneratorParams(BaseModel):
    """Base of each generator's parameter model: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DPGenerator(ABC):
    """A differentially private generator of synthetic rows over a declared schema."""

    name: ClassVar[str]
    Params: ClassVar[type[GeneratorParams]] = GeneratorParams
    # Parameters of pure post-processing that the privacy audit's fit may set instead
    # (they change nothing the mechanisms measure; the audit reads the measurements)
    audit_params: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self,
        columns: Mapping[str, Column],
        *,
        epsilon: float,
        delta: float,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if not columns:
            raise GeneratorError(f"{self.name}: the schema declares no columns")
        if not (isinstance(epsilon, (int, float)) and 0 < float(epsilon) < float("inf")):
            raise GeneratorError(f"{self.name}: epsilon must be a positive, finite number")
        if not (isinstance(delta, (int, float)) and 0 < float(delta) < 1):
            raise GeneratorError(f"{self.name}: delta must be in (0, 1)")
        self.columns: dict[str, Column] = dict(columns)
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.params = self._validate_params(params or {})
        self.report: PrivacyReport | None = None

    # ------------------------------------------------------------------ params
    @classmethod
    def _validate_params(cls, params: Mapping[str, Any]) -> GeneratorParams:
        unknown = [str(k) for k in params if k not in cls.Params.model_fields]
        if unknown:
            known = ", ".join(cls.Params.model_fields) or "none"
            raise GeneratorError(
                f"generator {cls.name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}"
                f" (known: {known})"
            )
        try:
            return cls.Params.model_validate(dict(params))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise GeneratorError(f"generator {cls.name!r}: invalid params: {problems}") from None

    # ------------------------------------------------------------------ interface
    @abstractmethod
    def fit(
        self, table: SensitiveTable | SensitiveCodes | CountedCodes, *, noise: NoiseSource
    ) -> PrivacyReport:
        """Fit on sensitive rows (or, where :attr:`reads_codes`, the pipeline's code
        store) with noise from ``noise``; returns what was spent."""

    @abstractmethod
    def sample(self, num_rows: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``num_rows`` synthetic rows, decoded to the declared columns (post-processing)."""

    @abstractmethod
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state as (JSON-able metadata, named numeric arrays)."""

    @abstractmethod
    def _restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Inverse of :meth:`_state` on a freshly constructed instance."""

    @property
    def reads_codes(self) -> bool:
        """Whether :meth:`fit` can train from the pipeline's code store (the training
        rows as integer codes of the declared domain, read chunk by chunk) in place of
        the rows in memory. False: the pipeline hands it the rows."""
        return False

    @property
    def counts_only(self) -> bool:
        """Whether :meth:`fit` needs nothing of the rows but exact marginal counts, so it
        can train from a :class:`CountedCodes` (a database counting where the rows are)."""
        return False

    @property
    def fitted(self) -> bool:
        return self.report is not None

    def _require_fitted(self) -> PrivacyReport:
        if self.report is None:
            raise GeneratorError(f"generator {self.name!r} is not fitted")
        return self.report

    def _check_fit_args(self, table: Any, noise: Any) -> None:
        """``fit`` takes a SensitiveTable (or, where :attr:`reads_codes`, the pipeline's
        SensitiveCodes) and a NoiseSource (never a bare frame or rng)."""
        if isinstance(table, SensitiveCodes) and self.reads_codes:
            pass
        elif isinstance(table, CountedCodes) and self.counts_only:
            pass
        elif not isinstance(table, SensitiveTable):
            raise GeneratorError(f"{self.name}.fit takes a SensitiveTable")
        if not isinstance(noise, NoiseSource):
            raise GeneratorError(
                f"{self.name}.fit takes noise=NoiseSource (never a numpy generator)"
            )

    @staticmethod
    def _check_rows(num_rows: int) -> int:
        if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)):
            raise GeneratorError("num_rows must be an integer")
        if num_rows < 0:
            raise GeneratorError("num_rows must be >= 0")
        return int(num_rows)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path | str) -> Path:
        """Write the fitted generator to directory ``path`` (JSON + npz, no pickle)."""
        report = self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta, arrays = self._state()
        doc = {
            "generator": self.name,
            "format_version": FORMAT_VERSION,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "params": self.params.model_dump(mode="json"),
            "columns": columns_to_json(self.columns),
            "report": report.to_dict(),
            "state": meta,
        }
        (path / META_FILE).write_text(json.dumps(doc, indent=2))
        # numeric arrays only: an object array (a pickle) is refused here, and load()
        # reads with allow_pickle=False too
        np.savez_compressed(path / ARRAYS_FILE, allow_pickle=False, **arrays)
        logger.info("saved generator %s to %s", self.name, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> DPGenerator:
        """Read a generator written by :meth:`save`; needs no data."""
        path = Path(path)
        try:
            doc = json.loads((path / META_FILE).read_text())
            with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise GeneratorError(
                f"cannot read a generator from {path}: {type(exc).__name__}"
            ) from None
        if not isinstance(doc, dict) or doc.get("generator") != cls.name:
            found = doc.get("generator") if isinstance(doc, dict) else None
            raise GeneratorError(f"{path} holds generator {found!r}, not {cls.name!r}")
        if doc.get("format_version") != FORMAT_VERSION:
            version = doc.get("format_version")
            raise GeneratorError(f"{path}: unsupported format version {version!r}")
        try:
            columns = columns_from_json(doc["columns"])
            gen = cls(columns, epsilon=doc["epsilon"], delta=doc["delta"], params=doc["params"])
            report = PrivacyReport.from_dict(doc["report"])
        except (KeyError, TypeError, AttributeError, ValueError):
            # ValidationError is a ValueError; messages may quote stored values: drop them.
            raise GeneratorError(f"{path}: the stored generator metadata is malformed") from None
        gen._restore(doc.get("state", {}), arrays)
        gen.report = report
        return gen
