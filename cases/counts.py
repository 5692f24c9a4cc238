"""How surprising a count is for an entity whose usual rate is known only roughly, often near zero.

Flagged mentions of one doctor arrive like a Poisson process whose rate we do not know. We start
from a prior belief (a small rate, worth a few days of evidence) and update it with the entity's
own history: the rate is then Gamma-distributed, and the count in the next window follows the
Gamma–Poisson (negative binomial) predictive distribution. Its upper tail says how often a count
this high would happen by chance. Unlike a three-sigma rule on daily counts, this works at a zero
baseline (a mean of 0 and a deviation of 0 make any single post "3 sigma"), and a short or empty
history widens the distribution instead of making the detector jumpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Surprise:
    tail: float
    """P(count ≥ observed) under the entity's usual rate."""
    expected: float
    """The usual count per window (the predictive mean)."""


def predictive_tail(observed: int, shape: float, rate: float) -> float:
    """P(X ≥ observed) where X ~ Poisson(λ), λ ~ Gamma(shape, rate), rate in windows."""
    if observed <= 0:
        return 1.0
    p = rate / (rate + 1.0)
    log_term = (
        math.lgamma(observed + shape)
        - math.lgamma(shape)
        - math.lgamma(observed + 1)
        + shape * math.log(p)
        + observed * math.log1p(-p)
    )
    term = math.exp(log_term)
    total, k = term, observed
    # Terms shrink by (k + shape) / (k + 1) · (1 - p) each step: sum until they stop mattering.
    while term > total * 1e-12 and k < observed + 100_000:
        term *= (k + shape) / (k + 1) * (1.0 - p)
        total += term
        k += 1
    return min(1.0, total)


def surprise(
    observed: int, history: int, history_windows: float, prior_per_window: float, prior_windows: float
) -> Surprise:
    """How surprising ``observed`` is after ``history`` events in ``history_windows`` windows."""
    shape = prior_per_window * prior_windows + history
    rate = prior_windows + history_windows
    return Surprise(tail=predictive_tail(observed, shape, rate), expected=shape / rate)
