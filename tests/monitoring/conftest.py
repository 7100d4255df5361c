"""Fixtures for the monitoring tests: a deliberately misbehaving edge as a real local HTTP server,
an environment whose desired config is in KV, and logged-in clients."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.kv_value import CanarySettings
from rollout import kv_writer
from rollout.models import ConfigChange
from tests.support.changes import first_config

GOOD_HEADER = "1;tag=B2a;cohort=proxy;reason=sampled"
GOOD_COOKIE = "_canary_cohort=proxy; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None"


def good_document(**changes) -> dict:
    document = {
        "status": "healthy",
        "environment": "production",
        "canary": {
            "percent": 10,
            "tag": "B2a",
            "emergency_proxy": False,
            "cohort": "proxy",
            "reason": "sampled",
        },
        "health": {"database": "ok", "r2_bucket": "ok", "proxy_origin": "ok"},
    }
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DROP:
            del target[last]
        else:
            target[last] = value
    return document


_DROP = object()


def _answer(status=200, body=None, headers=None):
    """(status, headers, body bytes) of one canned answer."""
    if body is None:
        body = good_document()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    base = {"X-Pix-Canary": GOOD_HEADER, "Set-Cookie": GOOD_COOKIE}
    base.update(headers or {})
    return status, {k: v for k, v in base.items() if v is not None}, raw


# One path per way an edge can answer wrongly (and one that answers right).
CANNED = {
    "/ok": _answer(),
    "/no-header": _answer(headers={"X-Pix-Canary": None}),
    "/bad-header": _answer(headers={"X-Pix-Canary": "1;tag=B2a;cohort=canary;reason=sampled"}),
    "/garbled-header": _answer(headers={"X-Pix-Canary": "native please"}),
    "/not-json": _answer(body=b"<html><body>502 Bad Gateway</body></html>"),
    "/not-an-object": _answer(body=[1, 2, 3]),
    "/missing-fields": _answer(body=good_document(health=_DROP)),
    "/missing-component": _answer(body=good_document(health__r2_bucket=_DROP)),
    "/wrong-types": _answer(body=good_document(canary__percent="10")),
    "/wrong-emergency-type": _answer(body=good_document(canary__emergency_proxy="no")),
    "/wrong-environment": _answer(body=good_document(environment="preview")),
    "/component-error": _answer(body=good_document(health__database="error: connection refused")),
    "/odd-component": _answer(body=good_document(health__proxy_origin="meh")),
    "/degraded": _answer(body=good_document(status="degraded")),
    "/no-cookie": _answer(headers={"Set-Cookie": None}),
    "/cohort-mismatch": _answer(headers={"X-Pix-Canary": "1;tag=B2a;cohort=native;reason=sampled"}),
    # Routes a client that sent no cookie as if it had one: consistent, but not a fresh draw.
    "/cookie-for-a-fresh-client": _answer(
        body=good_document(canary__reason="cookie"),
        headers={"X-Pix-Canary": "1;tag=B2a;cohort=proxy;reason=cookie"},
    ),
    # Answers that work but carry something the contract does not know: warnings.
    "/unknown-key": _answer(headers={"X-Pix-Canary": GOOD_HEADER + ";region=fra"}),
    "/unknown-reason": _answer(
        body=good_document(canary__reason="geo"),
        headers={"X-Pix-Canary": "1;tag=B2a;cohort=proxy;reason=geo"},
    ),
    "/extra-component": _answer(body=good_document(health__cache="ok")),
    "/cookie-not-secure": _answer(
        headers={"Set-Cookie": GOOD_COOKIE.replace("; Secure", "")}
    ),
    "/nan": _answer(body=b'{"status": "healthy", "canary": {"percent": NaN}, "x": 1e999}'),
    "/server-error": _answer(status=503, body=b"upstream unavailable"),
    "/rate-limited": _answer(status=429, body={"error": "x"}, headers={"Retry-After": "7"}),
}


class MisbehavingEdge(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path = self.path.split("?")[0]
        try:
            if path in CANNED:
                self._send(*CANNED[path])
            elif path == "/slow":
                time.sleep(3)
                self._send(*_answer())
            elif path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/huge":
                self._send(200, {"X-Pix-Canary": GOOD_HEADER}, b"[" + b"1," * 500_000 + b"1]")
            elif path == "/drip":
                # Headers at once, then a body that never ends, one byte every 0.2 s: each read
                # is quick, so only a bound on the whole exchange stops it.
                self.send_response(200)
                self.send_header("X-Pix-Canary", GOOD_HEADER)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(50):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            else:
                self._send(404, {}, b"unknown path")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connects when the sampler opens 8 at once; the
    # client then waits a second to retry, which reads as a timeout.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up on a slow or endless answer is expected here


class MisbehavingServer:
    def __init__(self):
        self.httpd = _Server(("127.0.0.1", 0), MisbehavingEdge)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def misbehaving():
    with MisbehavingServer() as server:
        yield server


# --- environments and people ---------------------------------------------------------------------

B2A = CanarySettings(10, "B2a", False)


def write_plan(environment, settings: CanarySettings = B2A):
    """Give the environment its first desired config, write it into KV and, when the edge
    reports it already, mark it in effect (all in-process)."""
    first_config(environment, settings, reason="initial")
    outcome = settle_writes(environment)
    if outcome.confirm_change_id:
        kv_writer.confirm(outcome.confirm_change_id)


def settle_writes(environment, limit=20):
    """Run the KV writer until the newest change is written (sleeping out 429s)."""
    for _ in range(limit):
        outcome = kv_writer.reconcile(environment.pk)
        if outcome.retry_in is None:
            return outcome
        time.sleep(min(outcome.retry_in, 1.1))
        ConfigChange.objects.filter(environment=environment).update(next_attempt_at=None)
    raise AssertionError("the KV writer did not settle")


@pytest.fixture
def planned(production):
    """Production with 10 % / B2a desired and in KV (and, with no propagation delay, at the
    edge)."""
    write_plan(production)
    return production
