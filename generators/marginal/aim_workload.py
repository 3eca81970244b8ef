"""AIM's workload and candidates: public arithmetic on column names, no data.

A workload is a weighted list of marginals the release should preserve (declared in the
spec's ``generator.params.workload``; default: every 2-way marginal plus every 3-way
marginal containing the target column). As in McKenna et al. (2022, Sec. 4), the
candidates AIM may measure are the workload's downward closure, and candidate ``r``
weighs ``w_r = sum_s c_s |r & s|`` over workload marginals ``s`` with weights ``c_s``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from synthrelease.errors import GeneratorError
from synthrelease.generators.marginal.jtree import Clique, elimination_cliques


class WorkloadQuery(BaseModel):
    """One workload marginal: its columns and a positive weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: tuple[str, ...] = Field(min_length=1, max_length=8)
    weight: float = Field(default=1.0, gt=0, le=1e6, allow_inf_nan=False)


def resolve(
    names: Sequence[str], *, workload: Sequence[WorkloadQuery] | None, target: str | None
) -> dict[Clique, float]:
    """The workload as {sorted column-index tuple: weight} (repeats add their weights)."""
    index = {n: i for i, n in enumerate(names)}
    if target is not None and target not in index:
        raise GeneratorError(f"aim: target {target!r} is not a declared column")
    out: dict[Clique, float] = {}
    if workload is None:
        queries = [(tuple(p), 1.0) for p in itertools.combinations(range(len(names)), 2)]
        if target is not None and len(names) >= 3:
            t = index[target]
            others = [i for i in range(len(names)) if i != t]
            queries += [(tuple(sorted((*p, t))), 1.0) for p in itertools.combinations(others, 2)]
        if len(names) == 1:
            queries = [((0,), 1.0)]
    else:
        queries = []
        for q in workload:
            unknown = [c for c in q.columns if c not in index]
            if unknown:
                raise GeneratorError(
                    f"aim: workload names unknown column(s) {', '.join(map(repr, unknown))}"
                )
            if len(set(q.columns)) != len(q.columns):
                raise GeneratorError("aim: a workload marginal repeats a column")
            queries.append((tuple(sorted(index[c] for c in q.columns)), float(q.weight)))
    for clique, weight in queries:
        out[clique] = out.get(clique, 0.0) + weight
    if not out:
        raise GeneratorError("aim: the workload is empty")
    return out


def candidates(workload: Mapping[Clique, float]) -> dict[Clique, float]:
    """Downward closure of the workload with AIM's weights ``sum_s c_s |r & s|``."""
    closure: set[Clique] = set()
    for clique in workload:
        for r in range(1, len(clique) + 1):
            closure.update(itertools.combinations(clique, r))
    return {
        r: sum(c * len(set(r) & set(s)) for s, c in workload.items())
        for r in sorted(closure, key=lambda x: (len(x), x))
    }


def affordable(
    cands: Mapping[Clique, float],
    sizes: Sequence[int],
    model: Sequence[Clique],
    *,
    limit_cells: float,
) -> dict[Clique, float]:
    """Candidates whose addition keeps the junction tree within ``limit_cells`` cells,
    plus those inside a measured clique (free: the model does not change)."""
    free = [set(c) for c in model]
    out = {}
    for r, w in cands.items():
        if any(set(r) <= c for c in free):
            out[r] = w
        elif math.prod(sizes[a] for a in r) <= limit_cells:
            cells = sum(
                math.prod(sizes[a] for a in c) for c in elimination_cliques(sizes, [*model, r])
            )
            if cells <= limit_cells:
                out[r] = w
    return out
