"""Array operations on clique tables, shared by the marginal engine's modules.

A clique table is an array whose axes are its sorted attribute tuple. These helpers sum
tables down (einsum, letters assigned locally), contract products of them, and give the
broadcast shape of a table inside a larger clique. Pure numpy; no data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.jtree import Clique

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_INTERMEDIATE = 2**23  # cells: einsum paths with larger temporaries are not used


def broadcast_shape(sizes: Sequence[int], attrs: Clique, within: Clique) -> tuple[int, ...]:
    """Broadcast shape of an array over ``attrs`` inside one over ``within`` (both sorted)."""
    return tuple(sizes[a] if a in attrs else 1 for a in within)


@functools.lru_cache(maxsize=4096)
def _subscripts(within: Clique, keep: Clique) -> str:
    """einsum subscripts summing an array over ``within`` down to ``keep`` (both sorted)."""
    letters = {a: _LETTERS[i % len(_LETTERS)] for i, a in enumerate(within)}
    return "".join(letters[a] for a in within) + "->" + "".join(letters[a] for a in keep)


def sum_to(table: np.ndarray, within: Clique, keep: Clique) -> np.ndarray:
    """Sum a table over ``within`` down to ``keep`` (einsum: several times faster than
    ``ndarray.sum`` over scattered axes)."""
    if keep == within:
        return table
    if len(within) > len(_LETTERS):
        axes = tuple(i for i, a in enumerate(within) if a not in keep)
        return table.sum(axis=axes)
    return np.einsum(_subscripts(within, keep), table)


def contract(factors: Sequence[tuple[Clique, np.ndarray]], out: Clique) -> np.ndarray:
    """sum over everything but ``out`` of the product of ``factors``, each an array whose
    axes are its sorted attribute tuple (einsum with letters assigned locally)."""
    attrs = sorted({a for c, _ in factors for a in c} | set(out))
    if len(attrs) > len(_LETTERS):
        raise GeneratorError("a marginal query spans more than 52 attributes")
    letter = {a: _LETTERS[i] for i, a in enumerate(attrs)}
    spec = ",".join("".join(letter[a] for a in c) for c, _ in factors)
    spec += "->" + "".join(letter[a] for a in out)
    arrays = [x for _, x in factors]
    if len(arrays) == 1:
        return np.einsum(spec, arrays[0])
    path, _ = np.einsum_path(spec, *arrays, optimize=("greedy", _MAX_INTERMEDIATE))
    return np.einsum(spec, *arrays, optimize=path)
