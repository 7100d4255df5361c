"""Ingestion from a real S3 server (moto, boto3) and from a directory: exact counts, percentiles
within 1%, every timestamp format, damaged files, re-listing, retries and concurrent runs; the
native cohort's slices of seconds beside the minutes."""

import gzip
import itertools
import json
import math
import random
import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, connection, transaction

from edge_standin.logpush import Routing, Traffic, make_batch
from integrations.logpush import SLICE_SECONDS
from metrics import ingest
from metrics.figures import window_figures
from metrics.models import LogObject, MinuteBucket, NativeSlice, WorkerMinute
from tests.metrics.conftest import START, generate, put_batches, write_batches
from tests.support.threads import at_once

pytestmark = pytest.mark.django_db
WINDOW = (datetime.fromtimestamp(START - 3600, UTC), datetime.fromtimestamp(START + 7200, UTC))


def seconds_of(stamp):
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp).timestamp()
    return stamp / 1e9 if stamp > 1e17 else stamp


def truth_of(batches, skip_keys=()):
    """Counts per (minute, cohort), every TTFB per cohort, upload errors per minute — read with
    the standard library, independently of the code under test."""
    cells = defaultdict(lambda: [0, 0])
    ttfb = defaultdict(list)
    uploads = Counter()
    for batch in batches:
        if batch.http_key not in skip_keys:
            for line in gzip.decompress(batch.http_body).splitlines():
                record = json.loads(line)
                minute = datetime.fromtimestamp(
                    seconds_of(record["EdgeStartTimestamp"]) // 60 * 60, UTC
                )
                cohort = (
                    "native"
                    if "cohort=native" in record["ResponseHeaders"]["x-pix-canary"]
                    else "proxy"
                )
                cells[(minute, cohort)][0] += 1
                cells[(minute, cohort)][1] += record["EdgeResponseStatus"] >= 500
                ttfb[cohort].append(record["EdgeTimeToFirstByteMs"])
        if batch.trace_key not in skip_keys:
            for line in gzip.decompress(batch.trace_body).splitlines():
                record = json.loads(line)
                if record["Outcome"] == "exception":
                    minute = datetime.fromtimestamp(record["EventTimestampMs"] // 60000 * 60, UTC)
                    uploads[minute] += 1
    return {key: tuple(value) for key, value in cells.items()}, ttfb, dict(uploads)


def native_slices_of(batches):
    """The native cohort's (requests, 5xx) per slice of seconds, read with the standard library."""
    slices = defaultdict(lambda: [0, 0])
    for batch in batches:
        for line in gzip.decompress(batch.http_body).splitlines():
            record = json.loads(line)
            if "cohort=native" in record["ResponseHeaders"]["x-pix-canary"]:
                seconds = seconds_of(record["EdgeStartTimestamp"])
                start = datetime.fromtimestamp(seconds // SLICE_SECONDS * SLICE_SECONDS, UTC)
                slices[start][0] += 1
                slices[start][1] += record["EdgeResponseStatus"] >= 500
    return {start: tuple(counts) for start, counts in slices.items()}


def stored_slices(environment):
    return {
        row.start: (row.requests, row.errors_5xx)
        for row in NativeSlice.objects.filter(environment=environment)
    }


def exact_quantile(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def stored_cells(environment):
    return {
        (bucket.minute, bucket.cohort): (bucket.requests, bucket.errors_5xx)
        for bucket in MinuteBucket.objects.filter(environment=environment)
    }


def stored_uploads(environment):
    return {
        row.minute: row.upload_errors
        for row in WorkerMinute.objects.filter(environment=environment)
        if row.upload_errors
    }


def assert_matches(environment, batches, skip_keys=()):
    cells, ttfb, uploads = truth_of(batches, skip_keys)
    assert stored_cells(environment) == cells
    kept = [batch for batch in batches if batch.http_key not in skip_keys]
    assert stored_slices(environment) == native_slices_of(kept)
    assert stored_uploads(environment) == uploads
    figures = window_figures(environment.pk, *WINDOW)
    for cohort in ("native", "proxy"):
        assert figures.cohorts[cohort].requests == len(ttfb[cohort])
        for q in (0.5, 0.9, 0.99):
            exact = exact_quantile(ttfb[cohort], q)
            measured = figures.cohorts[cohort].ttfb(q)
            assert abs(measured - exact) <= 0.01 * exact, (cohort, q, measured, exact)


@pytest.fixture(autouse=True)
def full_listings(settings):
    """Every run lists everything: these tests are about what a listing finds and claims (the
    quick look after the newest key: tests/metrics/test_ingest_schedule.py)."""
    settings.METRICS_FULL_LISTING_SECONDS = 0


@pytest.fixture(params=["directory", "r2"])
def source_kind(request):
    return request.param


@pytest.fixture
def source(request, source_kind):
    return request.getfixturevalue(f"{source_kind}_source")


@pytest.fixture
def deliver(request, source_kind, source):
    """Put files where the source reads them: the bucket or the directory."""
    if source_kind == "r2":
        client = request.getfixturevalue("s3")
        return lambda batches: put_batches(client, batches)
    return lambda batches: write_batches(source.directory, batches)


@pytest.mark.parametrize("timestamp_format", ["unixnano", "unix", "rfc3339"])
def test_counts_are_exact_and_percentiles_within_one_percent(source, deliver, timestamp_format):
    batches = generate(
        minutes=12,
        rpm=600,
        timestamp_format=timestamp_format,
        native={"latency_spread": 0.8, "upload_errors_per_minute": 2},
    )
    deliver(batches)
    report = ingest.ingest_source(source.pk, processes=1)
    assert report.counted == 2 * len(batches) and not report.errors
    assert report.bad_lines == 0
    assert_matches(source.environment, batches)
    source.refresh_from_db()
    newest = max(
        seconds_of(json.loads(line)["EdgeStartTimestamp"])
        for batch in batches
        for line in gzip.decompress(batch.http_body).splitlines()
    )
    assert abs(source.newest_log_at.timestamp() - newest) < 1.0


def test_an_object_listed_again_is_not_counted_twice(source, deliver):
    batches = generate(minutes=6)
    deliver(batches[:1])
    assert ingest.ingest_source(source.pk, processes=1).counted == 2
    deliver(batches[1:])  # the first files are listed again, beside new ones
    second = ingest.ingest_source(source.pk, processes=1)
    assert second.counted == 2 and second.listed == 4
    assert ingest.ingest_source(source.pk, processes=1).counted == 0
    assert_matches(source.environment, batches)
    assert LogObject.objects.filter(source=source).count() == 4


def test_a_rewritten_object_is_recorded_not_counted_again(source, deliver):
    batches = generate(minutes=5)
    deliver(batches)
    ingest.ingest_source(source.pk, processes=1)
    other = generate(minutes=5, seed=99)[0]
    other.http_key = batches[0].http_key  # same key, other content: a new ETag
    other.trace_key = batches[0].trace_key
    deliver([other])
    report = ingest.ingest_source(source.pk, processes=1)
    assert report.replaced == 2 and report.counted == 0
    assert_matches(source.environment, batches)
    assert LogObject.objects.filter(state=LogObject.State.REPLACED).count() == 2


def test_damaged_files_are_recorded_and_the_rest_still_counts(source, deliver):
    batches = generate(minutes=15, file_minutes=5)
    truncated, corrupt, with_bad_lines = batches
    _, intact_ttfb, _ = truth_of([with_bad_lines])
    truncated.http_body = truncated.http_body[: len(truncated.http_body) // 2]
    corrupt.http_body = b"this is not gzip at all"
    lines = gzip.decompress(with_bad_lines.http_body).splitlines()
    bad = [
        b"{not json",
        b'{"EdgeStartTimestamp": 1762956000000000000}',
        b'{"EdgeStartTimestamp": "yesterday", "EdgeResponseStatus": 200, '
        b'"EdgeTimeToFirstByteMs": 5}',
        b"[1, 2, 3]",
    ]
    with_bad_lines.http_body = gzip.compress(b"\n".join(lines[:10] + bad + lines[10:]) + b"\n")
    deliver(batches)

    report = ingest.ingest_source(source.pk, processes=1)

    assert report.counted == 6
    states = dict(LogObject.objects.filter(dataset="http_requests").values_list("key", "state"))
    assert states[corrupt.http_key] == LogObject.State.UNREADABLE
    assert states[truncated.http_key] == LogObject.State.DAMAGED
    assert states[with_bad_lines.http_key] == LogObject.State.DAMAGED
    damaged = LogObject.objects.get(key=with_bad_lines.http_key)
    assert damaged.bad_lines == 4 and len(damaged.problems) == 4
    assert "not JSON" in damaged.problems[0]
    assert "no EdgeResponseStatus" in damaged.problems[1]
    assert "truncated" in LogObject.objects.get(key=truncated.http_key).error
    assert "not a gzip file" in LogObject.objects.get(key=corrupt.http_key).error
    # What the truncated file still held counts, line for line; the good lines around the
    # bad ones count too.
    readable = 0
    for line in zlib.decompressobj(31).decompress(truncated.http_body).splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        readable += 1
    assert readable > 100
    figures = window_figures(source.environment.pk, *WINDOW)
    assert figures.requests == sum(len(v) for v in intact_ttfb.values()) + readable
    # Damaged objects are claimed: the next run does not read them again.
    assert ingest.ingest_source(source.pk, processes=1).counted == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_count_each_object_once(source, deliver):
    batches = generate(minutes=30, file_minutes=2, rpm=200)
    deliver(batches)
    reports = at_once(lambda: ingest.ingest_source(source.pk, processes=1), 3)
    assert sum(report.counted for report in reports) == 2 * len(batches)
    assert sum(report.already for report in reports) >= 0
    assert LogObject.objects.filter(source=source).count() == 2 * len(batches)
    assert_matches(source.environment, batches)


def test_a_backlog_read_by_child_processes_counts_the_same(source, deliver):
    batches = generate(minutes=20, file_minutes=2, rpm=200)
    deliver(batches)
    report = ingest.ingest_source(source.pk, processes=2)
    assert report.counted == 2 * len(batches)
    assert_matches(source.environment, batches)


def test_the_bulk_insert_stores_values_as_the_orm_would_and_refuses_what_does_not_fit(
    directory_source,
):
    """The bulk insert (one array per column on PostgreSQL, a VALUES list on SQLite) stores
    each value as the ORM would, returns only the rows it inserted, and a text too long for
    its column is refused, not cut short."""
    now = datetime(2025, 11, 12, 14, 30, tzinfo=UTC)
    row = {
        "source_id": directory_source.pk,
        "dataset": "http_requests",
        "key": "b2a/http_requests/a.log.gz",
        "etag": "e1",
        "size": 2**40,
        "last_modified": now,
        "state": LogObject.State.DAMAGED,
        "lines": 10,
        "bad_lines": 2,
        "error": "truncated gzip",
        "problems": ["line 3: not JSON", 'line 7: "quoted" \\ and ünïcode'],
        "oldest_at": None,
        "newest_at": now,
        "ingested_at": now,
    }
    claim = {"conflict": ["source_id", "key", "etag"], "returning": ["key", "etag"]}
    second = {**row, "key": "b2a/http_requests/b.log.gz"}
    assert [tuple(r) for r in ingest._insert(LogObject, [row, second], **claim)] == [
        (row["key"], "e1"),
        (second["key"], "e1"),
    ]
    assert [tuple(r) for r in ingest._insert(LogObject, [row, {**row, "etag": "e2"}], **claim)] == [
        (row["key"], "e2")
    ]
    stored = LogObject.objects.get(key=row["key"], etag="e1")
    for name, value in row.items():
        assert getattr(stored, name) == value, name
    if connection.vendor == "postgresql":  # SQLite does not enforce varchar lengths
        with pytest.raises(DataError), transaction.atomic():
            ingest._insert(LogObject, [{**row, "dataset": "x" * 33}], **claim)


def test_slices_split_by_files_add_up_late_files_too_and_only_the_recent_hour_is_kept(
    directory_source,
):
    """Files whose time ranges end inside a slice each bring part of it, in any order; a file
    more than an hour after the others drops their slices."""
    traffic = Traffic(requests_per_minute=600)
    traffic.native.update({"error_rate": 0.2, "rate_factor": 3}, "native")
    routing = Routing(percent=10, tag="B2a")
    rng = random.Random(5)
    edges = [START, START + 65, START + 127, START + 183]  # mid-slice boundaries
    batches = [make_batch(rng, a, b, routing, traffic) for a, b in itertools.pairwise(edges)]
    directory = directory_source.directory

    def ingest_files(*files):
        write_batches(directory, files)
        assert ingest.ingest_source(directory_source.pk, processes=1).counted == 2 * len(files)

    ingest_files(batches[2])
    ingest_files(batches[0])  # late: its slices are older than the newest line already in
    ingest_files(batches[1])  # brings the rest of slices the two others began and ended
    environment = directory_source.environment
    truth = native_slices_of(batches)
    assert stored_slices(environment) == truth
    assert len(truth) == 19 and sum(errors for _, errors in truth.values()) > 0  # 183 s
    shared = datetime.fromtimestamp(START + 60, UTC)  # slice 14:01:00, split at 14:01:05
    assert shared in native_slices_of(batches[:1]) and shared in native_slices_of(batches[1:2])

    later = make_batch(rng, START + 4000, START + 4060, routing, traffic)
    ingest_files(later)
    cutoff = datetime.fromtimestamp(START + 4060, UTC) - ingest.SLICES_KEPT
    assert cutoff > datetime.fromtimestamp(START + 183, UTC)
    assert stored_slices(environment) == native_slices_of([later])
    # A file an hour and more behind the newest line adds to the minutes, not to the slices.
    ingest_files(make_batch(rng, START + 183, START + 240, routing, traffic))
    assert stored_slices(environment) == native_slices_of([later])
    assert min(stored_slices(environment)) >= cutoff - timedelta(seconds=SLICE_SECONDS)
