"""The binomial test and the Wilson interval, against exact rational arithmetic and textbook
values."""

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.stats import binomial_two_sided_p, judge_share, wilson_interval


def exact_two_sided_p(k: int, n: int, p: Fraction) -> Fraction:
    """The minimum-likelihood two-sided p-value in exact fractions: the reference."""
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    observed = pmf[k]
    return sum((value for value in pmf if value <= observed), Fraction(0))


@pytest.mark.parametrize(
    "k, n, p",
    [(3, 100, "1/10"), (10, 100, "1/10"), (17, 100, "1/10"), (0, 20, "1/4"), (50, 100, "1/2"),
     (7, 15, "1/3"), (100, 100, "9/10"), (1, 1000, "1/100"), (42, 60, "1/2")],
)  # fmt: skip
def test_the_p_value_matches_exact_arithmetic(k, n, p):
    assert binomial_two_sided_p(k, n, float(Fraction(p))) == pytest.approx(
        float(exact_two_sided_p(k, n, Fraction(p))), rel=1e-9, abs=1e-300
    )


def test_known_values():
    # R: binom.test(3, 100, 0.1)$p.value
    assert binomial_two_sided_p(3, 100, 0.1) == pytest.approx(0.01784, abs=5e-5)
    # A perfectly symmetric outcome is as likely as it gets.
    assert binomial_two_sided_p(50, 100, 0.5) == pytest.approx(1.0)


def test_the_edges_of_p_are_single_points():
    assert binomial_two_sided_p(0, 100, 0.0) == 1.0
    assert binomial_two_sided_p(1, 100, 0.0) == 0.0
    assert binomial_two_sided_p(100, 100, 1.0) == 1.0
    assert binomial_two_sided_p(99, 100, 1.0) == 0.0
    assert binomial_two_sided_p(0, 0, 0.3) == 1.0


def test_large_samples_do_not_underflow():
    # 10 % of 10 000 observed as 8 %: far off, but a real number, not 0 from underflow.
    p_value = binomial_two_sided_p(800, 10_000, 0.1)
    assert 0 < p_value < 1e-10
    assert binomial_two_sided_p(1000, 10_000, 0.1) > 0.9


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), data=st.data())
def test_it_agrees_with_exact_arithmetic_everywhere(n, data):
    k = data.draw(st.integers(0, n))
    p = Fraction(data.draw(st.integers(1, 99)), 100)
    assert binomial_two_sided_p(k, n, float(p)) == pytest.approx(
        float(exact_two_sided_p(k, n, p)), rel=1e-7, abs=1e-12
    )


def test_wilson_textbook_values():
    # 10 of 100 at 95 %: (0.0552, 0.1744).
    low, high = wilson_interval(10, 100, 0.95)
    assert low == pytest.approx(0.05523, abs=1e-4) and high == pytest.approx(0.17437, abs=1e-4)
    # 0 of 10: the upper end is z²/(n + z²).
    low, high = wilson_interval(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-4)
    assert wilson_interval(10, 10, 0.95)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_a_higher_confidence_gives_a_wider_interval():
    narrow, wide = wilson_interval(30, 100, 0.9), wilson_interval(30, 100, 0.99)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]


@pytest.mark.parametrize("k, n", [(-1, 10), (11, 10)])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        binomial_two_sided_p(k, n, 0.5)
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_judge_share_puts_it_together():
    result = judge_share(31, 100, 0.1, alpha=0.01)
    assert result.share == 0.31 and result.confidence == 0.99
    assert result.p_value < 1e-6 and result.low > 0.1
