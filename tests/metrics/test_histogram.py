"""The log-spaced histogram: every quantile within 1% of the exact value, for any window."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.histogram import GROWTH, NBINS, Histogram, bin_bounds, bin_of


def exact(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@given(st.floats(min_value=0, max_value=5_000_000, allow_nan=False))
def test_every_value_falls_inside_its_bin(value):
    low, high = bin_bounds(bin_of(value))
    assert low <= value < high


def test_bins_are_one_percent_wide():
    for index in (1, 100, 1000, NBINS - 2):
        low, high = bin_bounds(index)
        assert high / low == pytest.approx(GROWTH)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=120_000), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9, 0.99, 0.01, 1.0]),
)
def test_quantiles_are_within_one_percent(values, q):
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    assert abs(histogram.quantile(q) - exact(values, q)) <= 0.01 * exact(values, q)


def test_merged_windows_equal_one_histogram_of_everything():
    rng = random.Random(5)
    minutes = [[round(rng.lognormvariate(5, 0.7)) for _ in range(300)] for _ in range(30)]
    merged = Histogram()
    for values in minutes:
        stored = Histogram()
        stored.add_values({v: values.count(v) for v in set(values)})
        merged.merge_bytes(stored.to_bytes())
    everything = [v for values in minutes for v in values]
    assert merged.total == len(everything)
    for q in (0.5, 0.9, 0.99):
        assert abs(merged.quantile(q) - exact(everything, q)) <= 0.01 * exact(everything, q)


def test_stored_form_is_compact_and_round_trips():
    histogram = Histogram()
    for value in (120, 121, 130, 0, 5000):
        histogram.add(value)
    stored = histogram.to_json()
    assert stored[0] == 0 and len(stored) == bin_of(5000) + 2
    assert Histogram.from_json(stored).counts == histogram.counts
    assert Histogram().to_json() == [] and Histogram.from_json([]).quantile(0.5) is None
    assert Histogram.from_json([bin_of(200), 3]).to_json() == [bin_of(200), 3]
    packed = histogram.to_bytes()
    assert len(packed) == 5 + len(stored) - 1  # one byte per bin: every count is small
    assert Histogram.from_bytes(packed).counts == histogram.counts
    histogram.add(130, 70_000)  # a count past 16 bits widens every count to 4 bytes
    assert Histogram.from_bytes(histogram.to_bytes()).counts == histogram.counts
    assert Histogram().to_bytes() == b"" and Histogram.from_bytes(b"").total == 0


def test_absurd_values_land_in_the_edge_bins():
    histogram = Histogram()
    histogram.add(-5)
    histogram.add(10**12)
    assert set(histogram.counts) == {0, NBINS - 1}
    with pytest.raises(ValueError):
        histogram.quantile(1.5)


def test_merging_stored_histograms_adds_them_bin_by_bin():
    """Merged runs are summed densely and folded into ``counts`` when it is read: the result
    is the same whatever the order of merges, adds and reads."""
    rng = random.Random(8)
    parts = []
    for _ in range(50):
        part = Histogram()
        for _ in range(rng.randrange(0, 300)):
            part.add(rng.lognormvariate(5, 1.5))
        if rng.random() < 0.1:
            part.add(130, 70_000)  # counts of 4 bytes
        if rng.random() < 0.1:
            part.add(10**12)  # the last bin
        parts.append(part)
    expected = Histogram()
    for part in parts:
        expected.merge(part)
    merged = Histogram({bin_of(50): 2})
    expected.add(50, 2)
    for number, part in enumerate(parts):
        merged.merge_bytes(part.to_bytes())
        if number % 7 == 0:
            assert merged.total == sum(expected.counts.values()) - sum(
                p.total for p in parts[number + 1 :]
            )
            merged.add(7)
            expected.add(7)
    assert merged.counts == expected.counts
    assert merged.to_bytes() == expected.to_bytes()
    assert merged.quantiles([0.5, 0.99]) == expected.quantiles([0.5, 0.99])
    # A stored run reaching past the last bin is not ours, but still adds up bin by bin.
    odd = bytes([1]) + (NBINS - 1).to_bytes(4, "little") + bytes([3, 0, 4])
    assert Histogram().merge_bytes(odd).counts == {NBINS - 1: 3, NBINS + 1: 4}
