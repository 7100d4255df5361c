"""A mergeable latency histogram with fixed log-spaced bins.

Bin 0 holds values below 1 ms (a time to first byte of 0 ms is common for cached answers); bin
``i >= 1`` holds ``[GROWTH**(i-1), GROWTH**i)``. With ``GROWTH = 1.01`` every bin is 1% wide, and
a quantile reported as its bin's midpoint is within 0.5% of the exact value — whatever the
window, because merging two histograms is adding their counts bin by bin.

Stored compactly as bytes (``to_bytes``): the counts of the run of bins from the first to the
last non-empty one, each in 1, 2 or 4 bytes (a minute of traffic spans a few hundred bins, mostly
with small counts). ``to_json`` gives the same run as a list, for people.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Iterable, Mapping

GROWTH = 1.01
MAX_MS = 10_000_000.0  # about 2.8 hours; anything slower is counted in the last bin
_LOG_GROWTH = math.log(GROWTH)
NBINS = int(math.log(MAX_MS) / _LOG_GROWTH) + 2


def bin_of(value: float) -> int:
    """The bin a value in milliseconds falls into. Negative values count as 0."""
    if value < 1:
        return 0
    index = int(math.log(value) / _LOG_GROWTH) + 1
    # Floating point can put an exact power of GROWTH one bin low or high; nudge it back.
    if GROWTH ** (index - 1) > value:
        index -= 1
    elif GROWTH**index <= value:
        index += 1
    return min(index, NBINS - 1)


def bin_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, 1.0
    return GROWTH ** (index - 1), GROWTH**index


def representative(index: int) -> float:
    """The value reported for a bin: its midpoint (0 for the bin below 1 ms)."""
    if index == 0:
        return 0.0
    low, high = bin_bounds(index)
    return (low + high) / 2


# Latencies are whole milliseconds and repeat endlessly: remember the bins of the common ones.
_BIN_CACHE: dict[float, int] = {}
_BIN_CACHE_SIZE = 200_000


class Histogram:
    """Counts per bin, kept sparse (a dict) while filling and merging.

    Stored histograms merged in (``merge_bytes``: a window merges one per minute and cohort) are
    first added run by run into a dense list of every bin, in C, and that list is folded into
    the dict when ``counts`` is next read."""

    __slots__ = ("_counts", "_dense", "_low", "_high")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self._counts: dict[int, int] = dict(counts or {})
        self._dense: list[int] | None = None  # merged runs not in _counts yet, bins [_low, _high)
        self._low = self._high = 0

    @property
    def counts(self) -> dict[int, int]:
        """Count per bin index, of the bins that have any."""
        if self._dense is not None:
            dense, low, high = self._dense, self._low, self._high
            self._dense = None
            counts = self._counts
            for index, count in enumerate(dense[low:high], low):
                if count:
                    counts[index] = counts.get(index, 0) + count
        return self._counts

    @counts.setter
    def counts(self, counts: Mapping[int, int]) -> None:
        self._counts = dict(counts)
        self._dense = None

    # --- filling ------------------------------------------------------------------------------

    def add(self, value: float, count: int = 1) -> None:
        index = bin_of(value)
        self.counts[index] = self.counts.get(index, 0) + count

    def add_values(self, values: Mapping[float, int]) -> None:
        """Add a tally of raw values (value → how many), as ingestion collects them."""
        counts = self.counts
        cache = _BIN_CACHE
        for value, count in values.items():
            index = cache.get(value)
            if index is None:
                index = bin_of(value)
                if len(cache) < _BIN_CACHE_SIZE:
                    cache[value] = index
            counts[index] = counts.get(index, 0) + count

    def merge(self, other: Histogram) -> Histogram:
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        return self

    # --- reading ------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def quantile(self, q: float) -> float | None:
        """The nearest-rank quantile: the value of the ⌈q·n⌉-th smallest observation (as SQL's
        ``percentile_disc`` picks it), reported as its bin's midpoint. None when empty."""
        if not 0 <= q <= 1:
            raise ValueError("q must be between 0 and 1")
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total - 1e-9))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return representative(index)
        raise AssertionError("unreachable: rank is at most the total")

    def quantiles(self, qs: Iterable[float]) -> dict[float, float | None]:
        return {q: self.quantile(q) for q in qs}

    # --- storing ------------------------------------------------------------------------------

    def to_json(self) -> list[int]:
        filled = [index for index, count in self.counts.items() if count]
        if not filled:
            return []
        first, last = min(filled), max(filled)
        dense = [0] * (last - first + 1)
        for index, count in self.counts.items():
            if count:
                dense[index - first] = count
        return [first, *dense]

    @classmethod
    def from_json(cls, stored: list[int] | None) -> Histogram:
        histogram = cls()
        if stored:
            histogram.merge_json(stored)
        return histogram

    def merge_json(self, stored: list[int] | None) -> Histogram:
        """Add a stored histogram without building an intermediate object (windows merge many)."""
        if not stored:
            return self
        counts = self.counts
        first = stored[0]
        for offset, count in enumerate(stored[1:]):
            if count:
                index = first + offset
                counts[index] = counts.get(index, 0) + count
        return self

    def to_bytes(self) -> bytes:
        """One byte giving the width of each count (1, 2 or 4 bytes, the narrowest that holds
        the largest), the first bin as a uint32, then the counts; all little-endian. A minute's
        few hundred bins mostly hold small counts, so this is usually a byte per bin."""
        stored = self.to_json()
        if not stored:
            return b""
        first, counts = stored[0], stored[1:]
        largest = max(counts)
        code = "B" if largest < 2**8 else "H" if largest < 2**16 else "I"
        head = array("I", [first])
        packed = array(code, counts)
        if sys.byteorder == "big":
            head.byteswap()
            packed.byteswap()
        return bytes([packed.itemsize]) + head.tobytes() + packed.tobytes()

    @classmethod
    def from_bytes(cls, stored: bytes | memoryview | None) -> Histogram:
        return cls().merge_bytes(stored)

    def merge_bytes(self, stored: bytes | memoryview | None) -> Histogram:
        """Add a stored histogram; windows merge many, so this is the read path's hot loop."""
        if not stored:
            return self
        stored = bytes(stored)
        first = int.from_bytes(stored[1:5], "little")
        if stored[0] == 1:  # counts of one byte each: the bytes are the counts
            packed = stored[5:]
        else:
            packed = array(_WIDTHS[stored[0]])
            packed.frombytes(stored[5:])
            if sys.byteorder == "big":
                packed.byteswap()
        end = first + len(packed)
        if end > NBINS:  # bins past the last one: not from to_bytes, add them one by one
            counts = self.counts
            for index, count in enumerate(packed, first):
                if count:
                    counts[index] = counts.get(index, 0) + count
            return self
        dense = self._dense
        if dense is None:
            dense = self._dense = [0] * NBINS
            self._low, self._high = first, end
        else:
            self._low, self._high = min(self._low, first), max(self._high, end)
        dense[first:end] = map(operator.add, dense[first:end], packed)
        return self


_WIDTHS = {1: "B", 2: "H", 4: "I"}
