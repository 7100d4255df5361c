"""Ingestion through real Celery worker processes on Redis and PostgreSQL, reading a real S3
server: a worker killed mid-run and the task run again, and two workers running it at once."""

import gzip
import time

import pytest

from metrics.models import LogObject, MinuteBucket
from metrics.tasks import ingest_logs
from tests.conftest import wait_for
from tests.metrics.conftest import S3_KEY, S3_SECRET, generate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
COPIES = 60


@pytest.fixture
def many_objects(s3, r2_source):
    """One 5-minute file stored under COPIES keys: COPIES objects whose total we know."""
    batch = generate(minutes=5, rpm=400, seed=3)[0]
    requests = len(gzip.decompress(batch.http_body).splitlines())
    for index in range(COPIES):
        key = f"b2a/http_requests/20251112/copy-{index:03d}.log.gz"
        s3.put_object(Bucket=s3.bucket, Key=key, Body=batch.http_body)
    return requests


def worker_env(s3):
    return {
        "R2_ENDPOINT_URL": s3.url,
        "R2_ACCESS_KEY_ID": S3_KEY,
        "R2_SECRET_ACCESS_KEY": S3_SECRET,
        "METRICS_INGEST_PROCESSES": 1,
        "METRICS_LOOKBACK_HOURS": 48,
    }


def total_requests(environment):
    return sum(
        MinuteBucket.objects.filter(environment=environment).values_list("requests", flat=True)
    )


def test_a_worker_killed_mid_run_and_the_task_run_again_count_each_object_once(
    s3, r2_source, many_objects, start_worker
):
    doomed = start_worker(pool="solo", name="doomed", env=worker_env(s3))
    ingest_logs.delay(r2_source.pk)
    wait_for(
        lambda: LogObject.objects.filter(source=r2_source).count() >= 5,
        timeout=30,
        interval=0.01,
        message="the first objects to be folded",
    )
    doomed.kill()
    claimed = LogObject.objects.filter(source=r2_source).count()
    assert claimed < COPIES, "the worker finished before it could be killed"
    # What the dead worker committed is whole: each claimed object's counts, nothing more.
    assert total_requests(r2_source.environment) == claimed * many_objects

    start_worker(pool="solo", name="rescuer", env=worker_env(s3))
    ingest_logs.delay(r2_source.pk)  # the retry (beat's next run, or the redelivered message)
    wait_for(
        lambda: LogObject.objects.filter(source=r2_source).count() == COPIES,
        timeout=60,
        message="every object to be folded",
    )
    assert total_requests(r2_source.environment) == COPIES * many_objects


def test_two_workers_running_the_task_at_once_count_each_object_once(
    s3, r2_source, many_objects, start_worker
):
    for name in ("a", "b"):
        start_worker(pool="threads", concurrency=2, name=name, env=worker_env(s3))
    for _ in range(4):
        ingest_logs.delay(r2_source.pk)
    wait_for(
        lambda: LogObject.objects.filter(source=r2_source).count() == COPIES,
        timeout=60,
        message="every object to be folded",
    )
    time.sleep(1.0)  # runs still in flight finish, and must add nothing
    assert LogObject.objects.filter(source=r2_source).count() == COPIES
    assert total_requests(r2_source.environment) == COPIES * many_objects
