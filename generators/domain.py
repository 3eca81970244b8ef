"""The public, finite domain of a table, built from the declared schema only.

Numeric and datetime columns are cut into bins whose edges come from the *declared*
bounds (never from the rows); categorical columns use the declared category set plus
the optional ``other`` bucket; a nullable column gets one more code for null.
Encoding refuses values outside the declared domain (naming the column, never the value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthrelease import values as normalise
from synthrelease.errors import GeneratorError, SchemaMismatchError
from synthrelease.spec import (
    BooleanColumn,
    CategoricalColumn,
    Column,
    DatetimeColumn,
    NumericalColumn,
)

DEFAULT_BINS = 32


def declared_bounds(spec: NumericalColumn) -> tuple[float, float]:
    """The declared ``(lower, upper)`` of a numerical column (an undeclared bound is
    refused: only the dpsgd generator estimates those, before it builds a domain)."""
    if spec.lower is None or spec.upper is None:
        raise GeneratorError("a numerical column's bounds are not declared; this step needs them")
    return float(spec.lower), float(spec.upper)


@dataclass(frozen=True)
class ColumnCoder:
    """Encodes one column to integer codes ``0..size-1`` and decodes them back."""

    name: str
    spec: Column
    bins: int  # number of non-null codes

    @property
    def nullable(self) -> bool:
        return bool(getattr(self.spec, "nullable", False))

    @property
    def size(self) -> int:
        return self.bins + (1 if self.nullable else 0)

    # ---------------------------------------------------------------- numeric helpers
    def _numeric_bounds(self) -> tuple[float, float]:
        s = self.spec
        if isinstance(s, DatetimeColumn):
            return float(pd.Timestamp(s.lower).value), float(pd.Timestamp(s.upper).value)
        if isinstance(s, NumericalColumn):
            return declared_bounds(s)
        raise GeneratorError(f"column {self.name!r}: a {s.type} column has no bounds")

    def integer_steps(self) -> bool:
        """Integer columns with a small range get one code per value."""
        s = self.spec
        if not (isinstance(s, NumericalColumn) and s.edges is None and s.integer):
            return False
        lower, upper = declared_bounds(s)
        return lower.is_integer() and int(np.floor(upper) - lower + 1) == self.bins

    def _fail(self, what: str) -> SchemaMismatchError:
        return SchemaMismatchError(f"column {self.name!r}: {what}")

    # ---------------------------------------------------------------- encode / decode
    def encode(self, values: pd.Series) -> np.ndarray:
        null = values.isna().to_numpy()
        if null.any() and not self.nullable:
            raise self._fail("has nulls but the schema declares nullable: false")
        codes = np.zeros(len(values), dtype=np.int64)
        present = ~null
        s = self.spec
        if isinstance(s, CategoricalColumn):
            labels = pd.Index(s.categories)
            idx = labels.get_indexer(values[present].astype(str))
            unknown = idx < 0
            if unknown.any():
                if s.other is None:
                    raise self._fail(
                        "has values outside the declared category set (declare them, or "
                        "set 'other' to bucket them)"
                    )
                idx[unknown] = len(labels)
            codes[present] = idx
        elif isinstance(s, BooleanColumn):
            read = normalise.boolean(values[present])  # the one boolean reader
            if read.unreadable.any():
                raise self._fail("has values that are not booleans")
            codes[present] = read.values.to_numpy(dtype=bool).astype(np.int64)
        else:
            x = self._as_float(values[present])
            lo, hi = self._numeric_bounds()
            if not np.isfinite(x).all() or (x < lo).any() or (x > hi).any():
                raise self._fail("has values outside the declared bounds")
            edges = self._edges()
            if edges is not None:
                codes[present] = np.searchsorted(edges, x, side="right")
            elif self.integer_steps():
                codes[present] = np.rint(x - lo).astype(np.int64)
            else:
                k = np.floor((x - lo) / (hi - lo) * self.bins).astype(np.int64)
                codes[present] = np.clip(k, 0, self.bins - 1)
        if null.any():
            codes[null] = self.bins
        return codes

    def _edges(self) -> np.ndarray | None:
        """Declared (or DP-learned) interior edges of a numerical column, if any."""
        edges = getattr(self.spec, "edges", None)
        return None if edges is None else np.asarray(edges, dtype=float)

    def _decode_edges(
        self, k: np.ndarray, edges: np.ndarray, rng: np.random.Generator, *, integer: bool
    ) -> np.ndarray:
        """A value drawn uniformly inside bin k = [e_k, e_k+1) (the last one closed); for
        integer columns, uniformly among the bin's integers."""
        lo, hi = self._numeric_bounds()
        bounds = np.concatenate([[lo], edges, [hi]])
        left, right = bounds[k], bounds[k + 1]
        if not integer:
            return np.clip(left + rng.random(len(k)) * (right - left), lo, hi)
        first = np.ceil(left)
        last = np.where(k == len(edges), np.floor(right), np.ceil(right) - 1)
        last = np.maximum(last, first)  # a bin holding no integer: its left end, rounded up
        x = first + np.floor(rng.random(len(k)) * (last - first + 1))
        return np.clip(np.minimum(x, last), np.ceil(lo), np.floor(hi)).astype(np.int64)

    def _as_float(self, values: pd.Series) -> np.ndarray:
        if isinstance(self.spec, DatetimeColumn):
            try:
                stamps = pd.to_datetime(values, errors="raise", format="mixed")
            except (ValueError, TypeError):
                raise self._fail("has values that are not dates/times") from None
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert(None)
            return stamps.astype("datetime64[ns]").astype(np.int64).to_numpy().astype(float)
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.isna().any():
            raise self._fail("has values that are not numbers")
        return numeric.to_numpy(dtype=float)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        codes = np.asarray(codes, dtype=np.int64)
        null = codes == self.bins if self.nullable else np.zeros(len(codes), dtype=bool)
        k = np.where(null, 0, codes)
        s = self.spec
        if isinstance(s, CategoricalColumn):
            labels = np.array(s.labels, dtype=object)
            out = pd.Series(labels[k], dtype=object)
            out[null] = None
            return out.rename(self.name)
        if isinstance(s, BooleanColumn):
            out = pd.Series(k.astype(bool), dtype="boolean")
            out[null] = pd.NA
            return out.rename(self.name)
        lo, hi = self._numeric_bounds()
        edges = self._edges()
        if edges is not None and isinstance(s, NumericalColumn):
            out = pd.Series(
                self._decode_edges(k, edges, rng, integer=s.integer),
                dtype="Int64" if s.integer else float,
            )
            out[null] = pd.NA if s.integer else np.nan
            return out.rename(self.name)
        if self.integer_steps():
            x = lo + k.astype(float)
        else:
            width = (hi - lo) / self.bins
            x = lo + (k + rng.random(len(k))) * width
            x = np.clip(x, lo, hi)
        if isinstance(s, DatetimeColumn):
            out = pd.Series(pd.to_datetime(x.astype(np.int64)))
            out[null] = pd.NaT
            return out.rename(self.name)
        if s.integer:
            x = np.clip(np.floor(x), np.ceil(lo), np.floor(hi))
            if not self.integer_steps() and len(x):
                # floor() can land one below the bin's first integer: move it back in, so
                # that decoded values re-encode to the sampled code (bins are >= 1 wide).
                below = np.floor((x - lo) / (hi - lo) * self.bins) < k
                x = np.where(below, np.minimum(x + 1, np.floor(hi)), x)
            out = pd.Series(x.astype(np.int64), dtype="Int64")
            out[null] = pd.NA
            return out.rename(self.name)
        out = pd.Series(x, dtype=float)
        out[null] = np.nan
        return out.rename(self.name)


class Discretiser:
    """All columns of a schema: the public domain a marginal method works on."""

    def __init__(self, columns: Mapping[str, Column], *, default_bins: int = DEFAULT_BINS) -> None:
        self.coders: dict[str, ColumnCoder] = {}
        for name, spec in columns.items():
            if not getattr(spec, "declared", True):
                raise GeneratorError(
                    f"column {name!r}: its bounds/categories are not declared; this step "
                    "needs a declared domain (only the dpsgd generator estimates undeclared "
                    "domains with DP, from privacy.domain_share)"
                )
            self.coders[name] = ColumnCoder(name, spec, _bins_for(spec, default_bins))

    @property
    def names(self) -> list[str]:
        return list(self.coders)

    @property
    def sizes(self) -> dict[str, int]:
        return {n: c.size for n, c in self.coders.items()}

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Integer codes for every declared column; extra columns are an error upstream."""
        return pd.DataFrame(
            {n: c.encode(frame[n]) for n, c in self.coders.items()}, index=frame.index
        )

    def decode(self, codes: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return pd.DataFrame({n: c.decode(codes[n].to_numpy(), rng) for n, c in self.coders.items()})


def _bins_for(spec: Column, default_bins: int) -> int:
    if isinstance(spec, CategoricalColumn):
        return len(spec.labels)
    if isinstance(spec, BooleanColumn):
        return 2
    if isinstance(spec, NumericalColumn) and spec.edges is not None:
        return len(spec.edges) + 1
    bins = spec.bins or default_bins
    if isinstance(spec, NumericalColumn) and spec.integer:
        lower, upper = declared_bounds(spec)
        if lower.is_integer():
            span = int(np.floor(upper) - lower + 1)
            if span <= bins:
                return span
    return bins
