"""Fixtures for metrics: a real S3 server (moto's server mode) on 127.0.0.1, local HTTP receivers
speaking Slack's and PagerDuty's protocols, log sources and generated Logpush files."""

import json
import random
import socket
import uuid

import boto3
import pytest
from botocore.config import Config

from edge_standin.logpush import Routing, Traffic, make_batch, write_batch
from metrics.models import LogSource
from tests.support.webhooks import WebhookReceiver

S3_KEY, S3_SECRET = "test-access-key", "test-secret-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- S3 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    yield server
    server.stop()


def s3_url(server) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


@pytest.fixture
def s3(s3_server, settings):
    """A boto3 client on the local S3 server, a fresh bucket, and Django pointed at both."""
    url = s3_url(s3_server)
    settings.R2_ENDPOINT_URL = url
    settings.R2_ACCESS_KEY_ID = S3_KEY
    settings.R2_SECRET_ACCESS_KEY = S3_SECRET
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.bucket = f"logs-canary-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=client.bucket)
    client.url = url
    return client


# --- generated Logpush files -------------------------------------------------------------------

START = 1_762_956_000.0  # 2025-11-12 14:00:00 UTC


def generate(
    *,
    minutes=10,
    file_minutes=5,
    start=START,
    percent=10,
    rpm=300,
    timestamp_format="unixnano",
    seed=7,
    native=None,
    proxy=None,
):
    """Batches of Logpush files with their truth (the records are regenerated from the seed)."""
    traffic = Traffic(requests_per_minute=rpm, timestamp_format=timestamp_format)
    traffic.native.update(native or {}, "native")
    traffic.proxy.update(proxy or {}, "proxy")
    rng = random.Random(seed)
    batches = []
    moment = start
    while moment < start + minutes * 60:
        until = min(moment + file_minutes * 60, start + minutes * 60)
        batches.append(make_batch(rng, moment, until, Routing(percent, "B2a", False), traffic))
        moment = until
    return batches


def put_batches(client, batches):
    for batch in batches:
        client.put_object(Bucket=client.bucket, Key=batch.http_key, Body=batch.http_body)
        client.put_object(Bucket=client.bucket, Key=batch.trace_key, Body=batch.trace_body)


def write_batches(directory, batches):
    for batch in batches:
        write_batch(directory, batch)


@pytest.fixture
def directory_source(production, tmp_path):
    return LogSource.objects.create(
        environment=production, kind=LogSource.Kind.DIRECTORY, directory=str(tmp_path / "logs")
    )


@pytest.fixture
def r2_source(production, s3):
    return LogSource.objects.create(
        environment=production, kind=LogSource.Kind.R2, bucket=s3.bucket
    )


# --- Slack and PagerDuty receivers -------------------------------------------------------------


@pytest.fixture
def slack_receiver(settings):
    with WebhookReceiver(
        default_headers={"Content-Type": "text/html"}, path="/services/T000/B000/incidents"
    ) as receiver:
        settings.SLACK_INCIDENTS_WEBHOOK_URL = receiver.url
        yield receiver


@pytest.fixture
def pagerduty_receiver(settings):
    with WebhookReceiver(
        default_status=202,
        default_body=json.dumps(
            {"status": "success", "message": "Event processed", "dedup_key": "k"}
        ),
        default_headers={"Content-Type": "application/json"},
        path="/v2/enqueue",
    ) as receiver:
        settings.PAGERDUTY_EVENTS_URL = receiver.url
        settings.PAGERDUTY_ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
        yield receiver
