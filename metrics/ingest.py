"""Log ingestion: list new objects, read them, fold them into per-minute buckets, once each.

Exactly once: an object is claimed by inserting its ``LogObject`` row (unique on source, key,
ETag) in the same transaction that folds its counts into the buckets. Two workers folding the
same object queue on the source row's lock; the second finds the claim taken and adds nothing.
A worker that dies mid-fold leaves nothing behind, and the object is read again next run.

Fetching and parsing happen before that transaction and outside any lock, in child processes
when there is a backlog.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from integrations import logpush, r2
from integrations.histogram import Histogram

from .models import LogObject, LogSource, MinuteBucket, NativeSlice, WorkerMinute
from .reading import (
    ObjectRef,
    ReadResult,
    SourceSpec,
    SourceUnavailable,
    read_in_child,
    read_object,
    reader_for,
)

log = logging.getLogger(__name__)

POOL_MIN_OBJECTS = 8  # fewer new objects than this are read in the task itself
FOLD_BATCH = 16  # objects claimed and folded per transaction
KNOWN_KEYS_CHUNK = 500
# A log line dated this far ahead of our clock does not move freshness (its clock is wrong).
FUTURE_TOLERANCE = timedelta(minutes=5)
ADVISORY_LOCK_SPACE = 0x4C4F4753  # "LOGS": the first key of the ingestion run's advisory lock
# Native slices are kept this far behind the newest log line: overwhelming evidence looks no
# further back than the critical rule's "for" minutes.
SLICES_KEPT = timedelta(hours=1)


@dataclass
class RunReport:
    listed: int = 0
    counted: int = 0  # objects folded by this run
    already: int = 0  # claimed by another worker first
    replaced: int = 0
    lines: int = 0
    bad_lines: int = 0
    damaged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: bool = False  # another run held the source: this one read nothing


def minute_of(minute_number: int) -> datetime:
    return datetime.fromtimestamp(minute_number * 60, UTC)


def slice_of(slice_number: int) -> datetime:
    return datetime.fromtimestamp(slice_number * logpush.SLICE_SECONDS, UTC)


def spec_for(source: LogSource) -> SourceSpec:
    if source.kind == LogSource.Kind.DIRECTORY:
        return SourceSpec(kind="directory", directory=source.directory)
    return SourceSpec(
        kind="r2",
        bucket=source.bucket,
        endpoint_url=settings.R2_ENDPOINT_URL
        or r2.endpoint_for(source.environment.cloudflare_account_id),
        access_key_id=settings.R2_ACCESS_KEY_ID,
        secret_access_key=settings.R2_SECRET_ACCESS_KEY,
        timeout=max(settings.HTTP_TIMEOUT_SECONDS, 5.0),
    )


# --- listing -------------------------------------------------------------------------------------


@dataclass
class Listing:
    new: list[ObjectRef]
    replaced: list[ObjectRef]  # same key as an object counted before, another ETag
    listed: int
    newest_keys: dict[str, str]  # dataset → the greatest key listed
    full: bool


def full_listing_due(source: LogSource, now: datetime) -> bool:
    """Whether this run lists everything: every METRICS_FULL_LISTING_SECONDS, and whenever a
    dataset has no newest key to list after yet."""
    if source.full_listing_at is None:
        return True
    if any(dataset not in (source.listed_after or {}) for dataset, _ in source.prefixes()):
        return True
    return (now - source.full_listing_at).total_seconds() >= settings.METRICS_FULL_LISTING_SECONDS


def list_new(source: LogSource, reader, *, full: bool = True) -> Listing:
    """Objects not ingested yet, objects rewritten since (same key, new ETag), and how many
    were listed. Oldest first, by the store's modification time, not by name.

    The quick look (``full=False``) lists only keys after the greatest one counted per dataset:
    one list call each, and no database query when nothing is new. Names decide only what the
    quick look sees first: the full listing finds whatever sorts earlier."""
    horizon = timezone.now() - timedelta(hours=settings.METRICS_LOOKBACK_HOURS)
    after = {} if full else dict(source.listed_after or {})
    listed = []
    newest_keys = {}
    for dataset, prefix in source.prefixes():
        for ref in reader.list(dataset, prefix, start_after=after.get(dataset)):
            newest_keys[dataset] = max(newest_keys.get(dataset, ""), ref.key)
            if ref.last_modified >= horizon:
                listed.append(ref)
    if not listed:
        return Listing([], [], 0, newest_keys, full)
    known: dict[str, set[str]] = {}
    keys = [ref.key for ref in listed]
    for start in range(0, len(keys), KNOWN_KEYS_CHUNK):
        rows = LogObject.objects.filter(
            source=source, key__in=keys[start : start + KNOWN_KEYS_CHUNK]
        ).values_list("key", "etag")
        for key, etag in rows:
            known.setdefault(key, set()).add(etag)
    new = [ref for ref in listed if ref.key not in known]
    replaced = [ref for ref in listed if ref.key in known and ref.etag not in known[ref.key]]
    new.sort(key=lambda ref: (ref.last_modified, ref.key))
    return Listing(new, replaced, len(listed), newest_keys, full)


@contextmanager
def run_lock(source_id: int):
    """One ingestion run per source at a time; True if this run holds it.

    Looks for new files come every few seconds, so a run over a backlog would otherwise be
    joined by others reading the same objects (the claims keep the counts right, but the
    reading is wasted). On PostgreSQL a session advisory lock, which the server lets go when
    the worker's connection dies with it; elsewhere (the embedded demo runs one worker
    process) a lock in this process."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_SPACE, source_id])
            held = cursor.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_SPACE, source_id]
                    )
        return
    with _local_locks_guard:
        lock = _local_locks.setdefault(source_id, threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()


_local_locks: dict[int, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _read_all(spec: SourceSpec, reader, refs: list[ObjectRef], processes: int):
    """ReadResults in the order of ``refs``: in child processes for a backlog, else here."""
    parallel = (
        processes > 1
        and len(refs) >= POOL_MIN_OBJECTS
        # A daemonic process (Celery's prefork children) may not start children of its own.
        and not multiprocessing.current_process().daemon
    )
    if not parallel:
        for ref in refs:
            yield read_object(reader, ref)
        return
    # forkserver, not fork: the parent may be a threaded worker, and forking threads is unsafe.
    context = multiprocessing.get_context("forkserver")
    # Children are forked from a server that has the reading code imported already.
    context.set_forkserver_preload(["metrics.reading"])
    # A few objects per task, so that a child always has the next ones at hand: with one, a
    # child waits for this process's pool thread to hand it more, and that thread waits for the
    # interpreter lock while this one folds.
    chunksize = max(1, min(4, len(refs) // (4 * processes)))
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        yield from pool.map(read_in_child, repeat(spec), refs, chunksize=chunksize)


# --- one run -------------------------------------------------------------------------------------


def ingest_source(source_id: int, *, processes: int | None = None) -> RunReport:
    """One ingestion run over a source: safe to run twice, or in two workers at once.

    When nothing is new it costs the source's row and one list call per dataset, and writes
    nothing (the full listing, once a minute, records its run)."""
    report = RunReport()
    source = LogSource.objects.select_related("environment").filter(pk=source_id).first()
    if source is None or not source.enabled:
        return report
    processes = settings.METRICS_INGEST_PROCESSES if processes is None else processes
    now = timezone.now()
    spec = spec_for(source)
    try:
        reader = reader_for(spec)
        listing = list_new(source, reader, full=full_listing_due(source, now))
    except SourceUnavailable as exc:
        report.errors.append(str(exc))
        _finish_run(source, report, None)
        return report
    report.listed = listing.listed
    if not listing.new and not listing.replaced:
        if listing.full:
            _finish_run(source, report, listing)
        return report
    with run_lock(source.pk) as held:
        if not held:
            report.busy = True  # another run is on it; the next look finds what it leaves
            return report
        for ref in listing.replaced:
            if _claim_replaced(source, ref):
                report.replaced += 1
        batch = []
        for result in _read_all(spec, reader, listing.new, processes):
            if result.unavailable:
                report.errors.append(result.unavailable)
            elif not result.gone:  # a vanished object is listed again next run if it exists
                batch.append(result)
            if len(batch) >= FOLD_BATCH:
                _fold_into(report, source, batch)
                batch = []
        _fold_into(report, source, batch)
    _finish_run(source, report, listing)
    return report


def _fold_into(report: RunReport, source: LogSource, batch: list[ReadResult]) -> None:
    if not batch:
        return
    claimed = fold_batch(source, batch)
    report.already += len(batch) - len(claimed)
    for result in claimed:
        summary = result.summary
        report.counted += 1
        report.lines += summary.lines
        report.bad_lines += summary.bad_lines
        if summary.error or summary.bad_lines:
            report.damaged.append(result.ref.key)


def _finish_run(source: LogSource, report: RunReport, listing: Listing | None) -> None:
    now = timezone.now()
    fields = {"last_run_at": now}
    if report.errors:
        fields.update(last_error="; ".join(report.errors)[:2000], last_error_at=now)
        log.warning("log source %s: %s", source.pk, fields["last_error"])
    else:
        fields["last_error"] = ""
    if listing is not None and listing.full:
        fields["full_listing_at"] = now
    if listing is not None and not report.errors:
        # Every object up to these keys is counted now: the next quick look starts after them.
        after = dict(source.listed_after or {})
        for dataset, key in listing.newest_keys.items():
            after[dataset] = max(after.get(dataset, ""), key)
        fields["listed_after"] = after
    LogSource.objects.filter(pk=source.pk).update(**fields)


def _claim_replaced(source: LogSource, ref: ObjectRef) -> bool:
    """A key ingested before now has another ETag: record it, count nothing again."""
    try:
        with transaction.atomic():
            LogObject.objects.create(
                source=source,
                dataset=ref.dataset,
                key=ref.key,
                etag=ref.etag,
                size=ref.size,
                last_modified=ref.last_modified,
                state=LogObject.State.REPLACED,
                error="the object was rewritten after it had been counted; not counted again",
            )
    except IntegrityError:
        return False
    return True


# --- folding -------------------------------------------------------------------------------------


def _state(summary: logpush.FileSummary) -> str:
    if summary.error and summary.lines == summary.bad_lines:
        return LogObject.State.UNREADABLE
    if summary.error or summary.bad_lines:
        return LogObject.State.DAMAGED
    return LogObject.State.COUNTED


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def fold(source: LogSource, result: ReadResult) -> bool:
    """Claim one object and add its counts. False if another run claimed it first."""
    return bool(fold_batch(source, [result]))


def fold_batch(source: LogSource, results: list[ReadResult]) -> list[ReadResult]:
    """Claim objects and add their counts, all in one transaction; returns those this call
    claimed (the others were folded by another run, and add nothing here).

    Few round trips, since a backlog folds hundreds of files: the freshness update doubles as
    the lock, the claims and the new buckets are ``INSERT … ON CONFLICT DO NOTHING RETURNING``,
    and only buckets that already existed are read, merged and written back.
    """
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Losing the last moments of commits in a database crash loses their claims with
            # them (one transaction): those objects are simply read again. No fsync wait.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The source row is the lock that serialises folds into one environment's buckets, so
        # read-merge-write of a bucket never loses a concurrent fold's counts.
        fields = {"last_object_at": now}
        newest = max(
            (_moment(r.summary.newest) for r in results if r.summary.newest is not None),
            default=None,
        )
        if newest is not None:
            newest = min(newest, now + FUTURE_TOLERANCE)
            fields["newest_log_at"] = Greatest(
                Coalesce(F("newest_log_at"), Value(newest)), Value(newest)
            )
        LogSource.objects.filter(pk=source.pk).update(**fields)
        claimed = {
            tuple(row)
            for row in _insert(
                LogObject,
                [_claim_row(source, result, now) for result in results],
                conflict=["source_id", "key", "etag"],
                returning=["key", "etag"],
            )
        }
        mine = [r for r in results if (r.ref.key, r.ref.etag) in claimed]
        if not mine:
            # Other runs folded them all first. Undo the freshness touch: nothing of ours counts.
            transaction.set_rollback(True)
            return []
        cells, trace_minutes, native_slices = _combine(mine)
        if cells:
            _fold_buckets(source.environment_id, cells, now)
        if trace_minutes:
            _fold_worker_minutes(source.environment_id, trace_minutes)
        if native_slices:
            newest_seen = max(filter(None, [source.newest_log_at, newest]))
            _fold_native_slices(source.environment_id, native_slices, newest_seen - SLICES_KEPT)
    return mine


def _claim_row(source: LogSource, result: ReadResult, now) -> dict:
    ref, summary = result.ref, result.summary
    return {
        "source_id": source.pk,
        "dataset": ref.dataset,
        "key": ref.key,
        "etag": ref.etag,
        "size": ref.size,
        "last_modified": ref.last_modified,
        "state": _state(summary),
        "lines": summary.lines,
        "bad_lines": summary.bad_lines,
        "error": summary.error,
        "problems": summary.problems,
        "oldest_at": _moment(summary.oldest),
        "newest_at": _moment(summary.newest),
        "ingested_at": now,
    }


def _combine(results: list[ReadResult]):
    """The cells of several files added together: (minute, cohort) → [requests, 5xx, bytes];
    the upload errors per minute and the native slices likewise."""
    cells: dict[tuple[int, str], list] = {}
    trace_minutes: dict[int, list[int]] = {}
    native_slices: dict[int, list[int]] = {}
    for result in results:
        for key, cell in result.summary.cells.items():
            stored = result.histograms[key]
            if key in cells:
                combined = cells[key]
                combined[0] += cell.requests
                combined[1] += cell.errors_5xx
                combined[2] = Histogram.from_bytes(combined[2]).merge_bytes(stored).to_bytes()
            else:
                cells[key] = [cell.requests, cell.errors_5xx, stored]
        for minute, (events, upload_errors) in result.summary.trace_minutes.items():
            counts = trace_minutes.setdefault(minute, [0, 0])
            counts[0] += events
            counts[1] += upload_errors
        for part, (requests, errors) in result.summary.native_slices.items():
            counts = native_slices.setdefault(part, [0, 0])
            counts[0] += requests
            counts[1] += errors
    return cells, trace_minutes, native_slices


def _insert(
    model, rows: list[dict], *, conflict: list[str], returning: list[str], add: tuple = ()
) -> list:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING RETURNING returning``: the rows inserted;
    with ``add``, a row that exists has those columns added to instead (and is returned too).

    PostgreSQL and SQLite (3.35+) both speak it; values go through each field's own
    preparation, as the ORM would send them."""
    if not rows:
        return []
    meta = model._meta
    columns = list(rows[0])
    fields = [meta.get_field(name.removesuffix("_id")) for name in columns]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    head = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
    action = "DO NOTHING"
    if add:
        sums = (f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in add)
        action = f"DO UPDATE SET {', '.join(sums)}"
    tail = (
        f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) {action} "
        f"RETURNING {', '.join(quote(c) for c in returning)}"
    )
    if connection.vendor == "postgresql":
        return _insert_postgresql(head, tail, rows, columns, fields)
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [
        model_field.get_db_prep_save(row[name], connection)
        for row in rows
        for name, model_field in zip(columns, fields, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(head + "VALUES " + ", ".join([marks] * len(rows)) + tail, params)
        return cursor.fetchall()


def _insert_postgresql(head: str, tail: str, rows: list[dict], columns: list, fields: list):
    """The same insert in one statement of one array parameter per column, whatever the number
    of rows: ``SELECT * FROM unnest(%b::integer[], %b::bytea[], …)``.

    The arrays go to the server as binary parameters (histograms as they are, no escaping),
    and the statement's text is the same for every batch, so psycopg prepares it once. A
    ``VALUES`` list of thousands of placeholders, quoted client-side, was most of a backlog's
    folding time."""
    # Array types without their modifiers: a text too long for varchar(32) still fails on
    # assignment to the column, where a cast to varchar(32)[] would silently cut it.
    types = [re.sub(r"\(.*?\)", "", field.db_type(connection)) for field in fields]
    # psycopg adapts numbers, text, bytes and aware datetimes itself; only JSON needs the
    # field's own preparation.
    is_json = [isinstance(field, models.JSONField) for field in fields]
    arrays = [
        [field.get_db_prep_save(row[name], connection) for row in rows]
        if prepare
        else [row[name] for row in rows]
        for name, field, prepare in zip(columns, fields, is_json, strict=True)
    ]
    unnest = ", ".join(f"%b::{db_type}[]" for db_type in types)
    connection.ensure_connection()
    # A plain psycopg cursor: Django's connection makes client-side binding cursors, which
    # would quote every element into the query text. Errors still come out as Django's.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"{head}SELECT * FROM unnest({unnest}){tail}", arrays, binary=True)
        return cursor.fetchall()


def _fold_buckets(environment_id: int, cells: dict, now) -> None:
    ordered = sorted(cells.items())
    inserted = _insert(
        MinuteBucket,
        [
            {
                "environment_id": environment_id,
                "minute": minute_of(minute),
                "cohort": cohort,
                "requests": requests,
                "errors_5xx": errors,
                "ttfb_histogram": stored,
                "updated_at": now,
            }
            for (minute, cohort), (requests, errors, stored) in ordered
        ],
        conflict=["environment_id", "minute", "cohort"],
        returning=["minute", "cohort"],
    )
    if len(inserted) == len(ordered):
        return  # every cell was a new bucket
    new = {(_aware(minute), cohort) for minute, cohort in inserted}
    rest = [(key, cell) for key, cell in ordered if (minute_of(key[0]), key[1]) not in new]
    if not rest:
        return
    # Minutes another file already filled: read, merge, write back (under the source lock).
    existing = {
        (bucket.minute, bucket.cohort): bucket
        for bucket in MinuteBucket.objects.filter(
            environment_id=environment_id, minute__in=sorted({minute_of(m) for (m, _), _ in rest})
        )
    }
    changed = []
    for (minute, cohort), (requests, errors, stored) in rest:
        bucket = existing[(minute_of(minute), cohort)]
        bucket.requests += requests
        bucket.errors_5xx += errors
        bucket.ttfb_histogram = (
            Histogram.from_bytes(bucket.ttfb_histogram).merge_bytes(stored).to_bytes()
        )
        bucket.updated_at = now
        changed.append(bucket)
    MinuteBucket.objects.bulk_update(
        changed, ["requests", "errors_5xx", "ttfb_histogram", "updated_at"]
    )


def _aware(value) -> datetime:
    """A datetime from a raw RETURNING row (SQLite gives text, PostgreSQL an aware datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _fold_native_slices(environment_id: int, native_slices: dict, cutoff: datetime) -> None:
    """Add the native slices (those of the kept hour) and forget the ones older than it."""
    _insert(
        NativeSlice,
        [
            {
                "environment_id": environment_id,
                "start": slice_of(part),
                "requests": requests,
                "errors_5xx": errors,
            }
            for part, (requests, errors) in sorted(native_slices.items())
            if slice_of(part) >= cutoff
        ],
        conflict=["environment_id", "start"],
        returning=["start"],
        add=("requests", "errors_5xx"),
    )
    NativeSlice.objects.filter(environment_id=environment_id, start__lt=cutoff).delete()


def _fold_worker_minutes(environment_id: int, trace_minutes: dict) -> None:
    existing = {
        row.minute: row
        for row in WorkerMinute.objects.filter(
            environment_id=environment_id, minute__in=[minute_of(m) for m in trace_minutes]
        )
    }
    created, changed = [], []
    for minute, (events, upload_errors) in sorted(trace_minutes.items()):
        row = existing.get(minute_of(minute))
        if row is None:
            created.append(
                WorkerMinute(
                    environment_id=environment_id,
                    minute=minute_of(minute),
                    events=events,
                    upload_errors=upload_errors,
                )
            )
        else:
            row.events += events
            row.upload_errors += upload_errors
            changed.append(row)
    WorkerMinute.objects.bulk_create(created)
    if changed:
        WorkerMinute.objects.bulk_update(changed, ["events", "upload_errors"])
