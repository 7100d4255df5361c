"""Slack's side of a button press: the signature on the request Slack sends us, the Web API calls
we answer with (``users.info``, ``views.open``) and the message's ``response_url``.

Web API: ``POST {base}/{method}`` with ``Authorization: Bearer xoxb-…``, a form or a JSON body;
the answer is JSON ``{"ok": true, …}`` or ``{"ok": false, "error": "…"}`` (HTTP 200 either way);
past the method's rate limit HTTP 429 with ``Retry-After`` seconds. A ``response_url`` takes a
JSON message (``replace_original`` or ``response_type: ephemeral``) and answers ``ok`` or
``{"ok": true}``; it is good for five uses within 30 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import httpx

from .edge_qa import parse_retry_after

# Slack's own replay window: a request signed longer ago than this (or that far ahead) is refused.
REPLAY_WINDOW_SECONDS = 300
# Errors worth asking again later; any other error is final.
TRANSIENT_ERRORS = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "timed out",
}


def signature_problem(
    *, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str:
    """What is wrong with a request's Slack signature, or "" when it is Slack's.

    ``X-Slack-Signature`` is ``v0=`` + hex HMAC-SHA256, under the app's signing secret, of
    ``v0:{X-Slack-Request-Timestamp}:{raw body}``; the timestamp must be within five minutes of
    ``now`` so a recorded request cannot be replayed later."""
    if not secret:
        return "no signing secret configured"
    if not timestamp or not signature:
        return "signature headers missing"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "timestamp is not a number"
    if abs(now - sent_at) > REPLAY_WINDOW_SECONDS:
        return "timestamp outside the five-minute window"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "signature does not match"
    return ""


@dataclass(frozen=True)
class Answer:
    """What a Web API method or a response_url answered."""

    ok: bool
    error: str = ""
    data: dict = field(default_factory=dict)
    status: int | None = None
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return (
            self.error in TRANSIENT_ERRORS
            or self.error.startswith("unreachable")
            or (self.status or 0) >= 500
        )


class WebApi:
    """The Slack Web API methods we call, with the bot token."""

    def __init__(self, *, token: str, base_url: str, client: httpx.Client):
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.client = client

    def users_info(self, user_id: str) -> Answer:
        """The person behind a Slack user id: ``data["user"]`` with ``profile.email`` (scope
        users:read.email), ``is_email_confirmed``, ``deleted``, ``is_bot``."""
        return self._call("users.info", data={"user": user_id})

    def views_open(self, trigger_id: str, view: dict) -> Answer:
        """Open a modal; ``trigger_id`` is good for three seconds after the press."""
        return self._call("views.open", json_body={"trigger_id": trigger_id, "view": view})

    def _call(self, method: str, *, data: dict | None = None, json_body: dict | None = None):
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            if json_body is not None:
                response = self.client.post(
                    f"{self.base_url}/{method}",
                    content=json.dumps(json_body),
                    headers={**headers, "Content-Type": "application/json; charset=utf-8"},
                )
            else:
                response = self.client.post(f"{self.base_url}/{method}", data=data, headers=headers)
        except httpx.TimeoutException:
            return Answer(False, "timed out")
        except httpx.HTTPError as exc:
            return Answer(False, f"unreachable: {type(exc).__name__}")
        return _answer(response)


def respond(response_url: str, message: dict, *, client: httpx.Client) -> Answer:
    """Post to the ``response_url`` of a press: replace the message or tell the presser alone."""
    try:
        response = client.post(response_url, json=message)
    except httpx.TimeoutException:
        return Answer(False, "timed out")
    except httpx.HTTPError as exc:
        return Answer(False, f"unreachable: {type(exc).__name__}")
    if response.status_code == 200 and response.text.strip() == "ok":
        return Answer(True, status=200)
    return _answer(response)


def _answer(response: httpx.Response) -> Answer:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        text = response.text[:200].strip()
        error = "ratelimited" if status == 429 else (text or f"HTTP {status}")
        return Answer(False, error, status=status, retry_after=retry_after)
    if status == 429:
        return Answer(False, "ratelimited", data, status, retry_after)
    ok = data.get("ok") is True and status == 200
    error = "" if ok else str(data.get("error") or f"HTTP {status}")[:200]
    return Answer(ok, error, data, status, retry_after)
