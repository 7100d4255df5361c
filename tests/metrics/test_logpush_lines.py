"""Reading Logpush lines and files: every timestamp format, the cohort header, bad lines,
damaged gzip."""

import gzip
import json
from datetime import UTC, datetime

import pytest

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
