"""Canaries for the one-run audit, placed where one row shows most.

Every canary differs from the others in exactly one column: canary ``(j, v)`` holds
value ``v`` of column ``j`` (a cell no other canary uses: its *own* 1-way cell) and, in
every other column, that column's *dump* value, the code the surrogate holds least. So
each canary owns a 1-way cell and every 2-way cell joining its own value with a dump
value; those 2-way cells are empty, or nearly, in the surrogate, and a mechanism that
measures any marginal touching column ``j`` too precisely gives the canary away.

Canaries are spread over the columns round-robin up to ``limit``, so that every column
owns some (a single broken measurement still shows). How many there are is a function of
the public domain only: ``sum(size - 1)`` over the columns, at most ``limit``.

**DP-SGD** (:func:`design_pair_canaries`) needs other rows. What one row leaves in a
MADE is the weight of its ``direct`` layer that joins each pair of its values, ``(j, x_j)``
in and ``(k, x_k)`` out: a row pushes it up by about ``1 - p(x_k)`` each time it is
sampled (:mod:`.attacks`). The push shows only in a weight that no surrogate row touches
(a pair of values the surrogate never holds together), and best in one that no other
canary shares. So each DP-SGD canary is chosen, value by value, to hold pairs absent from
the surrogate and shared with as few canaries as possible. There are ``limit`` of them
(the audit's setting, whatever the domain).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthrelease.errors import AuditError


def dump_values(surrogate: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Per column, the code the surrogate holds least (the lowest such code on ties)."""
    return np.array(
        [int(np.argmin(np.bincount(surrogate[:, j], minlength=s))) for j, s in enumerate(sizes)],
        dtype=np.int64,
    )


def design_canaries(surrogate: np.ndarray, sizes: Sequence[int], *, limit: int) -> np.ndarray:
    """Canary codes (canaries x columns); see the module docstring."""
    if surrogate.ndim != 2 or surrogate.shape[1] != len(sizes):
        raise AuditError("the surrogate's codes do not match the domain")
    if limit < 2:
        raise AuditError("the audit needs at least two canaries")
    dump = dump_values(surrogate, sizes)
    own = [[v for v in range(s) if v != dump[j]] for j, s in enumerate(sizes)]
    picked: list[tuple[int, int]] = []
    depth = 0
    while len(picked) < limit and any(depth < len(values) for values in own):
        for j, values in enumerate(own):
            if depth < len(values) and len(picked) < limit:
                picked.append((j, values[depth]))
        depth += 1
    if len(picked) < 2:
        raise AuditError("the domain is too small to place canaries (every column is constant)")
    codes = np.tile(dump, (len(picked), 1))
    for row, (j, v) in enumerate(picked):
        codes[row, j] = v
    return codes


SHARE_PENALTY = 1.0  # a pair that n other canaries hold is worth 1 / (1 + n)
SWEEPS = 3  # rounds of value-by-value improvement


def design_pair_canaries(
    surrogate: np.ndarray, sizes: Sequence[int], *, limit: int, rng: np.random.Generator
) -> np.ndarray:
    """DP-SGD canary codes (``limit`` x columns); see the module docstring.

    Values start drawn with weight ``1 / sqrt(1 + surrogate count)``; then, for
    :data:`SWEEPS` rounds, each canary's value in each column becomes the one that
    maximises ``sum over the other columns k of absent(v, x_k) / (1 + SHARE_PENALTY *
    others(v, x_k))``: ``absent``, the surrogate lacks the pair; ``others``, how many
    other canaries hold it.
    """
    if surrogate.ndim != 2 or surrogate.shape[1] != len(sizes):
        raise AuditError("the surrogate's codes do not match the domain")
    if limit < 2:
        raise AuditError("the audit needs at least two canaries")
    if sum(1 for s in sizes if s > 1) < 2:
        raise AuditError("the domain is too small to place canaries (fewer than two columns)")
    sizes = [int(s) for s in sizes]
    columns = len(sizes)
    # every value of every column gets one index: offsets[j] + code
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    surrogate = surrogate + offsets
    present = np.zeros((sum(sizes), sum(sizes)), dtype=bool)
    for j in range(columns):
        present[surrogate[:, j, None], surrogate] = True
    absent = ~present

    held = np.empty((limit, columns), dtype=np.int64)
    for j, s in enumerate(sizes):
        weight = (1.0 + np.bincount(surrogate[:, j] - offsets[j], minlength=s)) ** -0.5
        held[:, j] = offsets[j] + rng.choice(s, size=limit, p=weight / weight.sum())
    share = np.zeros_like(present, dtype=np.int32)  # canaries holding both values
    for j in range(columns):
        np.add.at(share, (held[:, j, None], held), 1)

    for _ in range(SWEEPS):
        for i in rng.permutation(limit):
            for j in rng.permutation(columns):
                rest = np.delete(held[i], j)
                old = held[i, j]
                values = np.arange(offsets[j], offsets[j] + sizes[j])
                others = share[np.ix_(values, rest)] - (values == old)[:, None]
                gain = (absent[np.ix_(values, rest)] / (1.0 + SHARE_PENALTY * others)).sum(1)
                new = int(values[np.argmax(gain + rng.random(sizes[j]) * 1e-9)])  # ties: random
                if new != old:
                    share[old, rest] -= 1
                    share[rest, old] -= 1
                    share[new, rest] += 1
                    share[rest, new] += 1
                    held[i, j] = new
    return held - offsets
