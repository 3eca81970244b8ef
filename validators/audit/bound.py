"""The one-run audit's arithmetic: (m canaries, r guesses, v correct) -> a lower bound
on epsilon (Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run",
NeurIPS 2023, Theorem 5.2 with its delta term).

Each of the ``m`` canaries was included by an independent fair coin; the attack guessed
``r`` of them (the rest abstain) and ``v`` guesses were right. Under (epsilon, delta)-DP,
with ``q = e^eps / (1 + e^eps)``::

    P[v or more right] <= P[Bin(r, q) >= v]
                          + 2 m delta max_{1 <= i <= v} (P[Bin(r, q) >= v - i]
                                                         - P[Bin(r, q) >= v]) / i

The bound is the largest epsilon whose p-value stays at or below the significance (the
p-value grows with epsilon), found by bisection on a bracket.

Written here, small, rather than imported: Google DeepMind's jax-privacy (2.0.0) has the
same arithmetic (``jax_privacy.auditing._epsilon_one_run``), but its public method counts
one-sided guesses only and importing it loads jax, optax and chex (about 4 s, more than
an MST fit on the demo table). ``tests/test_privacy_audit.py`` checks this function
against jax-privacy's at many points, against the theorem written out with scipy, and
against the closed form at delta -> 0.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

from synthrelease.errors import AuditError


def p_value(*, canaries: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """The theorem's bound on P[``correct`` or more right guesses] under
    (``epsilon``, ``delta``)-DP (see the module docstring)."""
    q = float(special.expit(epsilon))
    beta = float(stats.binom.sf(correct - 1, guesses, q))
    if delta == 0 or correct == 0:
        return min(beta, 1.0)
    i = np.arange(1, correct + 1)
    alpha = float(np.max((stats.binom.sf(correct - i - 1, guesses, q) - beta) / i, initial=0.0))
    return min(beta + alpha * delta * 2 * canaries, 1.0)


def epsilon_lower_bound(
    *, canaries: int, guesses: int, correct: int, delta: float, significance: float
) -> float:
    """The largest epsilon that (``guesses``, ``correct``) out of ``canaries`` refutes at
    ``significance`` under (epsilon, ``delta``)-DP; 0.0 when none is refuted."""
    if not 0 <= correct <= guesses <= canaries:
        raise AuditError("audit counts must satisfy 0 <= correct <= guesses <= canaries")
    if not 0 < significance < 1 or not 0 < delta < 1:
        raise AuditError("audit significance and delta must lie in (0, 1)")

    def excess(eps: float) -> float:  # > 0: this epsilon is refuted
        p = p_value(canaries=canaries, guesses=guesses, correct=correct, epsilon=eps, delta=delta)
        return significance - p

    if correct == 0 or excess(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while excess(hi) > 0:
        lo, hi = hi, 2 * hi
        if hi > 1e3:  # cannot happen (the p-value tends to 1): a guard, refuted anyway
            return hi
    return float(optimize.brentq(excess, lo, hi, xtol=1e-9))
