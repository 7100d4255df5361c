"""Fixtures for metrics: a real S3 server (moto's server mode) on 127.0.0.1, local HTTP receivers
speaking Slack's and PagerDuty's protocols, log sources and generated Logpush files."""

import json
import random
import socket
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from edge_standin.logpush import Routing, Traffic, make_batch, write_batch
from metrics.models import LogSource

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


class Receiver:
    """A small real HTTP server that records each POST and answers from a script, else with
    the protocol's success answer."""

    def __init__(self, success):
        self.success = success  # (status, body, headers)
        self.received = []
        self.script = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver.lock:
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    status, text, headers = (
                        receiver.script.popleft() if receiver.script else receiver.success
                    )
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                data = text.encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.server.server_address
        self.url = f"http://{host}:{port}"

    def answer(self, *responses):
        """Queue answers: (status, body) or (status, body, headers)."""
        for response in responses:
            status, text, *rest = response
            self.script.append((status, text, rest[0] if rest else {}))

    def bodies(self):
        with self.lock:
            return [entry["body"] for entry in self.received]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack_receiver(settings):
    receiver = Receiver((200, "ok", {"Content-Type": "text/html"}))
    settings.SLACK_INCIDENTS_WEBHOOK_URL = receiver.url + "/services/T000/B000/incidents"
    yield receiver
    receiver.stop()


@pytest.fixture
def pagerduty_receiver(settings):
    receiver = Receiver(
        (
            202,
            json.dumps({"status": "success", "message": "Event processed", "dedup_key": "k"}),
            {"Content-Type": "application/json"},
        )
    )
    settings.PAGERDUTY_EVENTS_URL = receiver.url + "/v2/enqueue"
    settings.PAGERDUTY_ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
    yield receiver
    receiver.stop()
