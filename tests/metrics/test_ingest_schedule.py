"""Logs picked up within seconds of landing: beat's look every few seconds, one list call per
dataset after the newest key counted (nothing else when nothing is new), the whole listing once
a minute for what sorts earlier, and the rules judged by the run that brought the data."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics import ingest
from metrics.models import AlertState, LogObject, LogSource
from metrics.tasks import ingest_all_logs
from tests.conftest import wait_for
from tests.metrics.conftest import START, generate, put_batches

pytestmark = pytest.mark.django_db


def test_beat_looks_for_new_logs_well_within_ten_seconds():
    entry = django_settings.CELERY_BEAT_SCHEDULE["metrics-ingest-logs"]
    assert entry["task"] == "metrics.tasks.ingest_all_logs"
    # The look, the broker's hop and the run itself must fit in ten seconds after a landing.
    assert entry["schedule"] <= timedelta(seconds=5)
    assert entry["options"]["expires"] <= 5


def in_r2(s3, batches):
    put_batches(s3, batches)
    return {key for batch in batches for key in (batch.http_key, batch.trace_key)}


def counted_keys(source):
    return set(LogObject.objects.filter(source=source).values_list("key", flat=True))


@pytest.fixture
def counted_once(s3, r2_source, settings):
    """Ten minutes of files counted by a first (full) run, a while back."""
    settings.METRICS_LOOKBACK_HOURS = 24 * 365 * 30
    batches = generate(minutes=10, file_minutes=1)
    keys = in_r2(s3, batches)
    with time_machine.travel(timezone.now() - timedelta(minutes=10), tick=False):
        ingest.ingest_source(r2_source.pk, processes=1)
    assert counted_keys(r2_source) == keys
    r2_source.refresh_from_db()
    return r2_source


def test_a_quick_look_when_nothing_is_new_reads_the_source_and_writes_nothing(counted_once):
    source = counted_once
    with time_machine.travel(source.full_listing_at + timedelta(seconds=5), tick=False):
        with CaptureQueriesContext(connection) as queries:
            report = ingest.ingest_source(source.pk, processes=1)
    assert (report.listed, report.counted) == (0, 0)
    assert len(queries) == 1, [query["sql"] for query in queries]  # the source's row
    before = source
    source = LogSource.objects.get(pk=source.pk)
    assert source.last_run_at == before.last_run_at and source.listed_after == before.listed_after


def test_a_file_that_lands_is_found_by_the_quick_look(s3, counted_once):
    source = counted_once
    later = generate(minutes=1, file_minutes=1, start=START + 600, seed=11)
    keys = in_r2(s3, later)
    with time_machine.travel(source.full_listing_at + timedelta(seconds=5), tick=False):
        report = ingest.ingest_source(source.pk, processes=1)
    assert report.counted == 2 and report.listed == 2  # only what sorts after the newest key
    assert keys <= counted_keys(source)
    fresh = LogSource.objects.get(pk=source.pk)
    assert fresh.full_listing_at == source.full_listing_at, "a quick look, not a full listing"
    assert fresh.listed_after["http_requests"] == later[0].http_key


def test_a_file_whose_name_sorts_earlier_is_found_by_the_next_full_listing(s3, counted_once):
    source = counted_once
    # A late file of minutes long past: its key sorts before everything counted.
    late = generate(minutes=1, file_minutes=1, start=START - 3600, seed=12)
    keys = in_r2(s3, late)
    with time_machine.travel(source.full_listing_at + timedelta(seconds=5), tick=False):
        assert ingest.ingest_source(source.pk, processes=1).counted == 0
    assert not keys & counted_keys(source)
    with time_machine.travel(
        source.full_listing_at + timedelta(seconds=django_settings.METRICS_FULL_LISTING_SECONDS),
        tick=False,
    ):
        report = ingest.ingest_source(source.pk, processes=1)
    assert report.counted == 2 and keys <= counted_keys(source)
    # Exactly once: the same files are not counted again by the next looks.
    assert ingest.ingest_source(source.pk, processes=1).counted == 0


def test_a_directory_quick_look_skips_folders_before_the_newest_key(tmp_path):
    from metrics.reading import DirectoryReader, SourceSpec

    for key in ("p/20251111/a.log.gz", "p/20251112/a.log.gz", "p/20251112/b.log.gz"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"")
    (tmp_path / "p/20251111").chmod(0)  # entering this folder would fail
    try:
        reader = DirectoryReader(SourceSpec(kind="directory", directory=str(tmp_path)))
        listed = reader.list("http_requests", "p/", start_after="p/20251112/a.log.gz")
    finally:
        (tmp_path / "p/20251111").chmod(0o755)
    assert [ref.key for ref in listed] == ["p/20251112/b.log.gz"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_beat_s_task_picks_up_a_file_the_stand_in_wrote_and_judges_it_at_once(
    edge, production, tmp_path, start_worker
):
    """A real worker runs what beat sends every few seconds: the stand-in's new file is found
    by a quick look, and the same run judges the alert rules (no separate evaluation)."""
    source = LogSource.objects.create(
        environment=production,
        kind=LogSource.Kind.DIRECTORY,
        directory=str(tmp_path / "production"),
    )
    start_worker(env={"METRICS_INGEST_PROCESSES": 1, "METRICS_FULL_LISTING_SECONDS": 3600})

    def write(minutes, end):
        edge.client.post(
            "/_standin/logpush/write",
            json={"env": "production", "minutes": minutes, "end": end, "directory": str(tmp_path)},
        ).raise_for_status()

    # 45 s into the minute before this one: each file's newest line falls in a later minute
    # than the previous file's, whatever second of the minute the test starts at.
    now = (time.time() // 60 - 1) * 60 + 45
    write(5, now - 60)
    ingest_all_logs.delay()
    wait_for(lambda: LogObject.objects.filter(source=source).count() == 10, timeout=30)
    first = LogSource.objects.get(pk=source.pk)

    def judged_until():
        state = AlertState.objects.filter(
            environment=production, rule__name="native-5xx-critical"
        ).first()
        return state and state.last_minute

    judged = wait_for(judged_until, timeout=30, message="the rules to be judged")
    write(1, now)  # the file that lands
    ingest_all_logs.delay()
    wait_for(lambda: LogObject.objects.filter(source=source).count() == 12, timeout=30)
    later = LogSource.objects.get(pk=source.pk)
    assert later.full_listing_at == first.full_listing_at, "found by the quick look"
    wait_for(lambda: judged_until() > judged, timeout=30, message="the new minutes to be judged")
