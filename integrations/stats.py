"""Small statistics for the cohort sampler: the exact two-sided binomial test and the Wilson score
interval. Standard library only; probabilities are summed in log space so n in the thousands
neither overflows nor underflows to a wrong answer.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

# Two probabilities within this relative distance count as equal when the two-sided test
# collects "outcomes at least as unlikely as the one observed" (floating-point noise must not
# drop the mirror-image outcome of a symmetric distribution).
_RELATIVE_TOLERANCE = 1e-7


def _log_pmf(k: int, n: int, p: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p), for 0 < p < 1."""
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def binomial_two_sided_p(k: int, n: int, p: float) -> float:
    """P-value of the exact two-sided binomial test of ``k`` successes in ``n`` trials.

    The sum of the probabilities of every outcome no more likely than the observed one (the
    "minimum likelihood" method, as R's ``binom.test`` and SciPy's ``binomtest`` use).
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be within [0, 1], got {p}")
    if n == 0:
        return 1.0
    # At the edges the distribution is a single point: anything else is impossible.
    if p == 0.0:
        return 1.0 if k == 0 else 0.0
    if p == 1.0:
        return 1.0 if k == n else 0.0
    observed = _log_pmf(k, n, p)
    threshold = observed + math.log1p(_RELATIVE_TOLERANCE)
    logs = [value for i in range(n + 1) if (value := _log_pmf(i, n, p)) <= threshold]
    # log-sum-exp: scale by the largest term so the sum is exact to rounding.
    top = max(logs)
    total = math.exp(top) * math.fsum(math.exp(value - top) for value in logs)
    return min(1.0, total)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a share of ``k`` in ``n`` (both ends within [0, 1]).

    Unlike the textbook p ± z·sqrt(p(1-p)/n), it stays meaningful at 0 of n and n of n, the
    cases we care most about (0 % plan, emergency stop, 100 % plan).
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (share + z2 / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class ShareTest:
    """An observed share judged against an expected one."""

    successes: int
    trials: int
    expected: float
    p_value: float
    low: float
    high: float
    confidence: float

    @property
    def share(self) -> float | None:
        return self.successes / self.trials if self.trials else None


def judge_share(k: int, n: int, expected: float, *, alpha: float) -> ShareTest:
    """Binomial test of k of n against ``expected``, with the Wilson interval at 1 - alpha."""
    low, high = wilson_interval(k, n, 1 - alpha)
    return ShareTest(
        successes=k,
        trials=n,
        expected=expected,
        p_value=binomial_two_sided_p(k, n, expected),
        low=low,
        high=high,
        confidence=1 - alpha,
    )


def difference_interval(
    k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float]:
    """An interval for the difference of two shares, k1/n1 − k2/n2, from independent samples.

    Newcombe's hybrid score interval (method 10 of Newcombe 1998): each share's distance to its
    own Wilson bound, combined in quadrature. It inherits Wilson's good behaviour at 0 of n, where
    the textbook Wald interval for a difference collapses to a point.
    """
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one trial")
    p1, p2 = k1 / n1, k2 / n2
    low1, high1 = wilson_interval(k1, n1, confidence)
    low2, high2 = wilson_interval(k2, n2, confidence)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = difference + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return max(-1.0, low), min(1.0, high)


def quantile_rank_interval(n: int, q: float, confidence: float = 0.95) -> tuple[int, int]:
    """The ranks (1-based, within 1..n) of the order statistics that bound the q-quantile of n
    observations: n·q ± z·sqrt(n·q·(1−q)), rounded outwards.

    Distribution-free: the count of observations below the true quantile is Binomial(n, q),
    whatever the latencies look like; this is its normal approximation.
    """
    if n < 1:
        raise ValueError(f"need at least one observation, got n={n}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be within (0, 1), got {q}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = n * q
    spread = z * math.sqrt(n * q * (1 - q))
    return max(1, math.floor(centre - spread)), min(n, math.ceil(centre + spread))
