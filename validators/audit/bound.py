"""The one-run audit's arithmetic: (m canaries, r guesses, v correct) -> a lower bound
on epsilon (Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run",
NeurIPS 2023, Theorem 5.2 with its delta term).

Each of the ``m`` canaries was included by an independent fair coin; the attack guessed
``r`` of them (the rest abstain) and ``v`` guesses were right. Under (epsilon, delta)-DP
the number of right guesses is at most ``Binomial(r, e^eps / (1 + e^eps))`` plus a term
in ``2 m delta``; the bound is the largest epsilon whose p-value stays below the
significance, found by root search.

The arithmetic is jax-privacy's (Google DeepMind, pinned 2.0.0): its
``_epsilon_one_run`` is the function behind the public
``CanaryScoreAuditor.epsilon_one_run``. We call it directly because the public method
counts only one-sided guesses (``k_- = 0``: "in" above a threshold) and our attack
also guesses "out" for its lowest scores, as the paper does; the bound depends on the
counts alone. ``tests/test_privacy_audit.py`` checks it against the paper's formula
written out independently, and against the closed form at delta -> 0.

jax-privacy imports jax, optax and chex (about 4 s), so it is imported on first use,
not when the validators load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from synthrelease.errors import AuditError

ONE_RUN = "one-run audit (Steinke, Nasr & Jagielski, NeurIPS 2023), jax-privacy 2.0.0"


@cache
def _one_run() -> Callable[..., float]:
    module = importlib.import_module("jax_privacy.auditing")
    return module._epsilon_one_run


def epsilon_lower_bound(
    *, canaries: int, guesses: int, correct: int, delta: float, significance: float
) -> float:
    """The largest epsilon that (``guesses``, ``correct``) out of ``canaries`` refutes at
    ``significance`` under (epsilon, ``delta``)-DP; 0.0 when none is refuted."""
    if not 0 <= correct <= guesses <= canaries:
        raise AuditError("audit counts must satisfy 0 <= correct <= guesses <= canaries")
    if not 0 < significance < 1 or not 0 < delta < 1:
        raise AuditError("audit significance and delta must lie in (0, 1)")
    if correct == 0:
        return 0.0
    bound = _one_run()(0.0, int(canaries), int(guesses), int(correct), significance, delta)
    return max(float(bound), 0.0)
