"""Reading Logpush lines and files: every timestamp format, the cohort header, bad lines,
damaged gzip."""

import gzip
import json
from collections import Counter
from datetime import UTC, datetime
from unittest import mock

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations import logpush

MOMENT = datetime(2025, 11, 12, 14, 30, 15, tzinfo=UTC).timestamp()
HEADER = {"x-pix-canary": "1;tag=B2a;cohort=native;reason=sampled"}


def line(**changes):
    record = {
        "EdgeStartTimestamp": int(MOMENT * 1e9),
        "EdgeResponseStatus": 200,
        "EdgeTimeToFirstByteMs": 120,
        "ResponseHeaders": HEADER,
    }
    record.update(changes)
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    "stamp",
    [
        int(MOMENT * 1e9),  # unixnano
        int(MOMENT),  # unix
        int(MOMENT * 1000),  # milliseconds
        int(MOMENT * 1e6),  # microseconds
        "2025-11-12T14:30:15Z",  # rfc3339
        "2025-11-12T14:30:15.250Z",
        "2025-11-12T15:30:15+01:00",
    ],
)
def test_every_timestamp_format(stamp):
    request = logpush.parse_http_request(line(EdgeStartTimestamp=stamp))
    assert abs(request.seconds - MOMENT) < 1
    summary = logpush.summarize(gzip.compress(line(EdgeStartTimestamp=stamp)), "http_requests")
    assert list(summary.cells) == [(int(MOMENT // 60), "native")]
    assert summary.bad_lines == 0


@pytest.mark.parametrize(
    "headers, cohort",
    [
        ({"x-pix-canary": "1;tag=B2a;cohort=proxy;reason=cookie"}, "proxy"),
        ({"X-Pix-Canary": "cohort=native; tag=B2a ;1"}, "native"),
        ({"x-pix-canary": "1;tag=B2a;cohort=sideways"}, "unknown"),
        ({}, "unknown"),
        (None, "unknown"),
    ],
)
def test_the_cohort_comes_from_the_canary_header(headers, cohort):
    record = line(ResponseHeaders=headers)
    assert logpush.parse_http_request(record).cohort == cohort
    assert list(logpush.summarize(record, "http_requests").cells)[0][1] == cohort


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (line(EdgeResponseStatus="200"), "EdgeResponseStatus"),
        (line(EdgeTimeToFirstByteMs=-3), "EdgeTimeToFirstByteMs"),
        (line(EdgeStartTimestamp="last tuesday"), "RFC 3339"),
        (line(EdgeStartTimestamp="2025-11-12T14:30:15"), "time zone"),
        (line(EdgeStartTimestamp=True), "boolean"),
    ],
)
def test_a_bad_line_is_counted_with_its_reason(raw, why):
    with pytest.raises(logpush.BadLine, match=why):
        logpush.parse_http_request(raw)
    summary = logpush.summarize(b"\n".join([line(), raw, line()]), "http_requests")
    assert (summary.lines, summary.bad_lines) == (3, 1)
    assert summary.problems[0].startswith("line 2:")
    assert sum(cell.requests for cell in summary.cells.values()) == 2


def test_upload_errors_in_trace_events():
    failed = {
        "EventTimestampMs": int(MOMENT * 1000),
        "Outcome": "exception",
        "Logs": [{"Level": "error", "Message": ["R2 upload failed: PUT uploads/x 503"]}],
        "Exceptions": [],
    }
    fine = {"EventTimestampMs": int(MOMENT * 1000), "Outcome": "ok", "Logs": [], "Exceptions": []}
    thrown = {**fine, "Exceptions": [{"Name": "Error", "Message": "R2 put timed out"}]}
    unrelated = {**fine, "Logs": [{"Level": "error", "Message": ["database slow"]}]}
    raw = b"\n".join(json.dumps(r).encode() for r in (failed, fine, thrown, unrelated))
    summary = logpush.summarize(gzip.compress(raw), "workers_trace_events")
    assert summary.trace_minutes == {int(MOMENT // 60): [4, 2]}


def test_damaged_gzip_gives_what_it_can():
    body = gzip.compress(b"\n".join(line() for _ in range(5000)))
    text, error = logpush.decompress(body[: len(body) // 2])
    assert "truncated" in error and 0 < text.count(b"\n") < 5000
    assert logpush.decompress(b"\x1f\x8b garbage")[1].startswith("corrupt gzip")
    assert logpush.decompress(b"PK\x03\x04 a zip file") == (b"", "not a gzip file")
    two_members = gzip.compress(line()) + gzip.compress(b"\n" + line())
    assert logpush.decompress(two_members) == (line() + b"\n" + line(), "")
    assert logpush.decompress(line()) == (line(), "")  # plain NDJSON is taken as it is


# --- the file loop against the line parser ------------------------------------------------------

BASE_MINUTE = int(MOMENT // 60) * 60
STAMPS = st.one_of(
    # Unix nanoseconds anywhere in four minutes, and right at minute boundaries (where dividing
    # by 1e9 rounds up into the next minute).
    st.integers((BASE_MINUTE - 60) * 10**9, (BASE_MINUTE + 180) * 10**9 - 1),
    st.sampled_from([-1, 0, 1]).flatmap(
        lambda d: st.integers(0, 3).map(lambda m: (BASE_MINUTE + 60 * m) * 10**9 + d)
    ),
    st.integers(-60, 179).map(lambda s: BASE_MINUTE + s),  # Unix seconds
    st.integers(-60, 179).map(lambda s: (BASE_MINUTE + s) * 1000 + 999),  # milliseconds
    st.integers(-60, 179).map(
        lambda s: datetime.fromtimestamp(BASE_MINUTE + s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
    st.integers(-60, 179).map(
        lambda s: datetime.fromtimestamp(BASE_MINUTE + s + 3600, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S+01:00"
        )
    ),
    st.just(float(BASE_MINUTE + 30.5)),
    st.sampled_from([True, None, "yesterday", "2025-11-12T14:30:61Z", [1], {}]),
)
HEADERS = st.sampled_from(
    [
        {"x-pix-canary": "1;tag=B2a;cohort=proxy;reason=sampled"},
        {"x-pix-canary": "1;tag=B2a;cohort=proxy;reason=cookie"},
        {"x-pix-canary": "1;tag=B2a;cohort=native;reason=sampled"},
        {"x-pix-canary": "1;tag=B2a;cohort=sideways"},
        {"X-Pix-Canary": "cohort=native; tag=B2a ;1"},
        {"x-pix-canary": None},
        {"x-pix-canary": ["cohort=native"]},
        {"x-pix-canary": 7},
        {"other": "cohort=native"},
        {},
        None,
        [],
        "cohort=native",
    ]
)
FIELDS = {
    "EdgeStartTimestamp": STAMPS,
    "EdgeResponseStatus": st.sampled_from(
        [200, 200, 204, 404, 500, 503, 599, 999, 1000, -1, "500", True, 200.0, None]
    ),
    "EdgeTimeToFirstByteMs": st.one_of(
        st.integers(0, 3000),
        st.floats(0, 3000, allow_nan=False),
        st.sampled_from([147, 147.0, -1, "fast", True, None]),
    ),
    "ResponseHeaders": HEADERS,
}
RECORDS = st.fixed_dictionaries({}, optional={"ClientIP": st.just("198.51.100.7"), **FIELDS}).map(
    lambda record: json.dumps(record).encode()
)
LINES = st.lists(
    st.one_of(
        RECORDS,
        st.fixed_dictionaries(FIELDS).map(lambda record: json.dumps(record).encode()),
        st.sampled_from([b"", b" ", b"{nope", b"[1]", b"null", b'"text"', b"{}"]),
    ),
    max_size=40,
)


def summary_line_by_line(lines):
    """What a file of these lines says, from ``parse_http_request`` one line at a time."""
    cells, bad, seconds, native_slices = {}, 0, [], {}
    for raw in lines:
        if not raw:
            continue
        try:
            request = logpush.parse_http_request(raw)
        except logpush.BadLine:
            bad += 1
            continue
        cell = cells.setdefault((int(request.seconds // 60), request.cohort), [0, 0, Counter()])
        cell[0] += 1
        cell[1] += request.status >= 500
        cell[2][request.ttfb_ms] += 1
        seconds.append(request.seconds)
        if request.cohort == "native":
            counts = native_slices.setdefault(int(request.seconds // logpush.SLICE_SECONDS), [0, 0])
            counts[0] += 1
            counts[1] += request.status >= 500
    return cells, bad, seconds, native_slices


@settings(max_examples=300, deadline=None)
@given(LINES)
def test_a_file_sums_up_to_what_its_lines_say_one_by_one(lines):
    """Lines out of order across minutes, cohorts reached by several header values, every
    timestamp format and bad lines anywhere: the file loop's caches change nothing, and the
    native slices of seconds hold what the lines of each say."""
    summary = logpush.summarize(gzip.compress(b"\n".join(lines)), "http_requests")
    cells, bad, seconds, native_slices = summary_line_by_line(lines)
    assert summary.lines == sum(1 for raw in lines if raw)
    assert summary.bad_lines == bad
    assert list(summary.cells) == list(cells)  # in the order their first lines came
    for key, (requests, errors, ttfb) in cells.items():
        cell = summary.cells[key]
        assert (cell.requests, cell.errors_5xx, cell.ttfb) == (requests, errors, dict(ttfb))
    assert summary.native_slices == native_slices
    assert summary.newest == (max(seconds) if seconds else None)
    assert summary.oldest == (min(seconds) if seconds else None)


def test_a_nanosecond_stamp_rounding_onto_a_minute_counts_in_that_minute():
    boundary = BASE_MINUTE + 60
    before = line(EdgeStartTimestamp=boundary * 10**9 - 1)  # / 1e9 rounds to the boundary
    summary = logpush.summarize(before, "http_requests")
    assert list(summary.cells) == [(boundary // 60, "native")]
    assert summary.newest == summary.oldest == float(boundary)


@pytest.mark.parametrize("piece", [1, 7, 300, 4096])
def test_lines_split_across_inflated_pieces_count_as_in_one(monkeypatch, piece):
    """Lines are parsed piece by piece as the file inflates: a line cut between two pieces is
    read whole, and bad lines keep their numbers in the file."""
    lines = [line(EdgeTimeToFirstByteMs=ms, EdgeResponseStatus=500 + ms % 2) for ms in range(200)]
    lines[0], lines[77], lines[-1] = b"{nope", b"", line(EdgeResponseStatus="200")
    raw = gzip.compress(b"\n".join(lines) + b"\n")
    whole = logpush.summarize(raw, "http_requests")
    assert (whole.lines, whole.bad_lines) == (199, 2)
    assert [problem.split(":")[0] for problem in whole.problems] == ["line 1", "line 200"]
    monkeypatch.setattr(logpush, "PIECE", piece)
    pieces = logpush.summarize(raw, "http_requests")
    assert (pieces.lines, pieces.bad_lines, pieces.problems, pieces.error) == (
        whole.lines,
        whole.bad_lines,
        whole.problems,
        whole.error,
    )
    assert {key: (c.requests, c.errors_5xx, c.ttfb) for key, c in pieces.cells.items()} == {
        key: (c.requests, c.errors_5xx, c.ttfb) for key, c in whole.cells.items()
    }


# --- the msgspec fast path against the orjson path ----------------------------------------------


class _Refuses:
    """Stands in for ``logpush.HTTP_FIELDS``: every line goes the orjson way."""

    @staticmethod
    def decode(line):
        raise msgspec.DecodeError("refused")


def by_orjson_only(raw):
    with mock.patch.object(logpush, "HTTP_FIELDS", _Refuses):
        return logpush.summarize(raw, "http_requests")


def as_seen(summary):
    cells = {key: (c.requests, c.errors_5xx, c.ttfb) for key, c in summary.cells.items()}
    return (
        summary.lines,
        summary.bad_lines,
        summary.problems,
        summary.error,
        list(summary.cells),
        cells,
        summary.newest,
        summary.oldest,
    )


def fields(**changes):
    """A line of these fields, each given as its JSON text."""
    record = {
        "EdgeStartTimestamp": b"1762957815000000000",
        "EdgeResponseStatus": b"200",
        "EdgeTimeToFirstByteMs": b"120",
        "ResponseHeaders": b'{"x-pix-canary":"1;tag=B2a;cohort=native;reason=sampled"}',
        "ClientIP": b'"198.51.100.7"',
    }
    record.update(changes)
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in record.items()) + b"}"


NUMBERS = [
    b"9223372036854775807",  # the int64 range msgspec checks, and just beyond it, where
    b"9223372036854775808",  # orjson keeps integers up to 2**64 - 1 and reads larger ones
    b"18446744073709551615",  # as floats
    b"18446744073709551616",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"123456789012345678901234567890",
    b"1" + b"0" * 400,
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"1.5e9",
    b"-0",
    b"-0.0",
    b"0.1000000000000000055511151231257827",
    b"200.0",
    b"-1",
    b"-1.5",
    b"999",
    b"1000",
    b"true",
    b"null",
    b'"500"',
    b"{}",
    b"[]",
    b"NaN",
    b"Infinity",
]
EDGE_LINES = [
    *(fields(**{name: number}) for number in NUMBERS for name in FIELDS),
    *(fields(ResponseHeaders=b'{"x-pix-canary":%s}' % number) for number in NUMBERS),
    fields(ClientIP=b'"\xff"'),  # invalid UTF-8 where ingestion does not look
    fields(ClientIP=b'"\xed\xa0\x80"'),  # an encoded surrogate
    fields(ClientIP='"Zürich"'.encode()),  # valid UTF-8 beyond ASCII
    fields(ResponseHeaders='{"x-pix-canary":"1;tag=B2a;cohort=native;reason=café"}'.encode()),
    fields(EdgeStartTimestamp=b'"2025-11-12T14:30:15Z"'),
    fields(EdgeStartTimestamp=b'"2025-11-12T14:30:15\\u005a"'),
    fields(EdgeStartTimestamp='"2025-11-12T14:30:1５Z"'.encode()),  # a fullwidth digit
    fields(ClientIP=b'"\\ud800"'),
    fields(ClientIP=b'"\\ud800\\u0041"'),
    fields(ClientIP=b'"\\udc00"'),
    fields(ClientIP=b'"a\x01b"'),
    fields(ClientIP=b"[" * 2000 + b"]" * 2000),
    fields(ClientIP=b"[" * 500 + b"]" * 500),
    fields(ClientIP=b"01"),
    fields(ClientIP=b"1."),
    fields(ClientIP=b'"\\x"'),
    fields(EdgeResponseStatus=b"true", ClientIP=b"1", **{"EdgeResponseStatus ": b"200"}),
    fields(EdgeResponseStatus=b"200") + b"",
    b'{"EdgeResponseStatus":true,' + fields()[1:],  # a duplicate key: the last one counts
    fields()[:-1] + b',"EdgeResponseStatus":"200"}',
    fields()[:-1] + b',"EdgeResponseStatus":503}',
    fields()[:-1] + b",}",
    fields() + b" x",
    fields() + b"\r",
    fields() + b"\t ",
    fields() + b"\x00",
    b"\xef\xbb\xbf" + fields(),
    b" " + fields(),
    b"null",
    b"[1]",
    b'"text"',
    b"{}",
    b"{nope",
    b"1",
    b"\xff",
]


def test_the_msgspec_path_and_the_orjson_path_agree_on_edge_cases():
    """Every line of EDGE_LINES, alone and all in one file: the same counts, cells and reasons
    whichever way the lines were read."""
    for edge in EDGE_LINES:
        assert as_seen(logpush.summarize(edge, "http_requests")) == as_seen(by_orjson_only(edge))
    # The one case where they differ, documented in _HttpFields: a number beyond a double in a
    # field ingestion does not read. orjson refuses the line, msgspec skips the field.
    overflow = fields(ClientIP=b"1e400")
    assert logpush.summarize(overflow, "http_requests").bad_lines == 0
    assert by_orjson_only(overflow).bad_lines == 1
    whole = b"\n".join(EDGE_LINES)
    assert as_seen(logpush.summarize(whole, "http_requests")) == as_seen(by_orjson_only(whole))
    assert as_seen(logpush.summarize(gzip.compress(whole), "http_requests")) == as_seen(
        by_orjson_only(whole)
    )


def test_what_msgspec_takes_orjson_reads_the_same():
    """A line the fast path decodes has exactly the values (and types) orjson reads."""
    taken = 0
    for edge in EDGE_LINES:
        try:
            decoded = logpush.HTTP_FIELDS.decode(edge)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            continue
        if not edge.isascii():
            continue  # the loop sends these to orjson
        taken += 1
        record = orjson.loads(edge)
        for name in FIELDS:
            mine, theirs = getattr(decoded, name), record.get(name)
            assert (type(mine), mine) == (type(theirs), theirs), (edge, name)
    assert taken >= 10


ANY_VALUE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["2025-11-12T14:30:15Z", "2025-11-12T14:30:15.5+01:00", {}, [], {"a": 1}]),
)
ODD_RECORDS = st.fixed_dictionaries(
    {}, optional={name: st.one_of(FIELDS[name], ANY_VALUE) for name in FIELDS}
).map(lambda record: json.dumps(record).encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES.map(b"\n".join), ODD_RECORDS, st.sampled_from(EDGE_LINES))))
def test_the_msgspec_path_and_the_orjson_path_agree(lines):
    """Generated files of valid and invalid lines: the same summary either way."""
    text = b"\n".join(lines)
    assert as_seen(logpush.summarize(text, "http_requests")) == as_seen(by_orjson_only(text))
