"""The declared-domain rules, applied row by row to a frame of sensitive rows.

Pure functions on a plain frame: :func:`synthrelease.private.sources.enforce_domain` is
the trusted reader that feeds the rows in. Values are read by
:mod:`synthrelease.values` (the same reading as the copy checks, the firewall, the
model features and drafting); this module only decides, per column, what happens to a
value that is null, unreadable or outside the declared domain.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from synthrelease.spec import CategoricalColumn, Column, DatetimeColumn, NumericalColumn
from synthrelease.values import normalise, utc_bound


def _violations(values: pd.Series, spec: object) -> tuple[pd.Series, pd.Series, pd.Series | None]:
    """(null, bad, clipped values or None): which rows break the declared domain.

    ``bad`` marks present values outside the domain (or unparsable); for numerical and
    datetime columns ``clipped`` holds every parsable value moved into the bounds (NaN /
    NaT where the value cannot be parsed, so it cannot be clipped)."""
    norm = normalise(values, spec)
    null = pd.Series(norm.null, index=values.index)
    if not getattr(spec, "declared", True):  # the generator estimates it with DP, and
        return null, ~null & False, None  # clips / buckets to that estimate itself
    bad = pd.Series(norm.bad, index=values.index)
    if isinstance(spec, DatetimeColumn):
        return null, bad, norm.values.clip(utc_bound(spec.lower), utc_bound(spec.upper))
    if isinstance(spec, NumericalColumn):
        if pd.api.types.is_integer_dtype(values.dtype):  # an integer column stays integer
            return null, bad, values.clip(spec.lower, spec.upper)
        return null, bad, norm.values.clip(spec.lower, spec.upper)
    return null, bad, None


def enforce_frame(
    frame: pd.DataFrame, columns: Mapping[str, Column]
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """``frame`` with every column's out-of-domain rule applied (a new frame; see
    :func:`synthrelease.private.sources.enforce_domain` for the rules) and the counts."""
    frame = frame.copy()
    keep = pd.Series(True, index=frame.index)
    counts: dict[str, dict[str, int]] = {}
    for name, spec in columns.items():
        values = frame[name]
        null, bad, clipped = _violations(values, spec)
        bad_null = null & (not getattr(spec, "nullable", False))
        policy = spec.policy
        entry = {"clipped": 0, "dropped": 0}
        if policy == "clip" and clipped is not None:
            unclippable = bad & clipped.isna()
            to_clip = bad & ~unclippable
            drop = unclippable | bad_null
            if getattr(spec, "type", None) == "numerical":
                if to_clip.any():
                    frame[name] = clipped.where(to_clip, frame[name])
            elif to_clip.any():
                fixed = (
                    clipped
                    if values.dtype != object
                    else clipped.map(lambda t: t.isoformat() if not pd.isna(t) else None)
                )
                frame[name] = fixed.where(to_clip, values)
            entry["clipped"] = int((to_clip & ~drop).sum())
        elif policy == "other" and isinstance(spec, CategoricalColumn) and spec.other is not None:
            drop = bad_null
            entry["other"] = int((bad & ~drop).sum())
            if bad.any():
                frame[name] = values.where(~bad, spec.other)
        else:  # drop (or an undeclared domain: nothing is outside it yet)
            drop = bad | bad_null
        if isinstance(spec, NumericalColumn) and spec.declared and frame[name].dtype == object:
            # text that parses as numbers (the rest is dropped): keep numbers
            frame[name] = pd.to_numeric(frame[name].where(~drop, None), errors="coerce")
        keep &= ~drop
        entry["dropped"] = int(drop.sum())
        counts[name] = entry
    return frame[keep].reset_index(drop=True), counts
