"""A local Slack for the tests: a real HTTP server on 127.0.0.1 that speaks the Web API methods we
call and takes what we post to a press's ``response_url``; and Slack's signature on the requests
it sends us.

with SlackStandIn() as slack:
    slack.add_user("U1", "theo@example.com")
    slack.answer_next("users.info", 429, {"ok": False, "error": "ratelimited"})
    slack.calls      # [{"method", "headers", "args"}]  every Web API call
    slack.responses  # [{"path", "json"}]  every post to a response_url
"""

import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

from tests.support.serving import Serving
from tests.support.webhooks import read_body, send_answer

BOT_TOKEN = "xoxb-test-0000-bot-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed(payload: dict, *, secret: str = SIGNING_SECRET, timestamp: int | None = None):
    """The body and headers of an interaction request as Slack sends it: the payload as JSON in
    the form field ``payload``, signed ``v0=HMAC-SHA256(secret, "v0:{ts}:{body}")``."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


class SlackStandIn(Serving):
    def __init__(self, *, token: str = BOT_TOKEN):
        self.token = token
        self.users: dict[str, dict] = {}
        self.calls: list[dict] = []
        self.responses: list[dict] = []
        self._answers: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = read_body(self)
                if self.path.startswith("/api/"):
                    status, body, headers = stand_in._web_api(
                        self.path[len("/api/") :], dict(self.headers), raw
                    )
                else:
                    status, body, headers = stand_in._response_url(self.path, raw)
                # A str answer is sent as plain text ("ok", as a response_url may answer).
                if isinstance(body, str):
                    send_answer(self, status, body, headers, "text/plain; charset=utf-8")
                else:
                    kind = "application/json; charset=utf-8"
                    send_answer(self, status, json.dumps(body), headers, kind)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = self.base_url
        self.api_url = f"{self.base}/api"
        self.response_url_prefix = f"{self.base}/actions/"

    def response_url(self, name: str = "T1/1/abc") -> str:
        return self.response_url_prefix + name

    def add_user(self, user_id: str, email: str, *, confirmed=True, deleted=False, bot=False):
        self.users[user_id] = {
            "id": user_id,
            "team_id": "T1",
            "name": email.split("@")[0],
            "deleted": deleted,
            "is_bot": bot,
            "is_email_confirmed": confirmed,
            "profile": {"email": email, "real_name": email.split("@")[0].title()},
        }

    def answer_next(self, method: str, status: int, body, headers: dict | None = None):
        """Queue the answer to the next call of ``method`` (then the method's own again)."""
        with self._lock:
            self._answers[method].append((status, body, headers or {}))

    def calls_of(self, method: str) -> list[dict]:
        return [call for call in self.calls if call["method"] == method]

    # --- the protocol ---------------------------------------------------------------------

    def _web_api(self, method: str, headers: dict, raw: str):
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            args = json.loads(raw or "{}")
        else:
            args = {key: values[0] for key, values in parse_qs(raw).items()}
        with self._lock:
            self.calls.append({"method": method, "headers": headers, "args": args})
            queued = self._answers[method].popleft() if self._answers[method] else None
        if queued:
            return queued
        if headers.get("Authorization") != f"Bearer {self.token}":
            error = "not_authed" if "Authorization" not in headers else "invalid_auth"
            return 200, {"ok": False, "error": error}, {}
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            if user is None:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "user": user}, {}
        if method == "views.open":
            if not content_type.startswith("application/json"):
                args["view"] = json.loads(args.get("view", "null"))
            view = args.get("view")
            if not args.get("trigger_id"):
                return 200, {"ok": False, "error": "invalid_trigger_id"}, {}
            if not isinstance(view, dict) or view.get("type") != "modal":
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            if len(view.get("title", {}).get("text", "")) > 24:
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True, "view": {"id": "V0001", **view}}, {}
        return 404, {"ok": False, "error": "unknown_method"}, {}

    def _response_url(self, path: str, raw: str):
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"ok": False, "error": "invalid_payload"}, {}
        with self._lock:
            self.responses.append({"path": path, "json": body})
            queued = self._answers["response_url"]
            answer = queued.popleft() if queued else (200, {"ok": True}, {})
        return answer


def press(stand_in, message: dict, action_id: str, *, user: str, trigger: str) -> dict:
    """The ``block_actions`` payload of pressing the button ``action_id`` in ``message`` (a
    payload we posted: ``{"text", "blocks"}``)."""
    (button,) = [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "team": {"id": "T1", "domain": "acme"},
        "trigger_id": trigger,
        "response_url": stand_in.response_url(trigger),
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1700000000.000100"},
        "channel": {"id": "C1", "name": "deployments"},
        "message": {"type": "message", "ts": "1700000000.000100", **message},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "rollout_control.actions",
                "value": button["value"],
                "action_ts": "1700000001.000200",
            }
        ],
    }


def submission(view: dict, text: str, *, user: str, trigger: str) -> dict:
    """The ``view_submission`` payload of the dialog ``view`` (as opened by views.open) with
    ``text`` typed into its input."""
    return {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "trigger_id": trigger,
        "view": {
            "id": "V0001",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": text}}}
            },
        },
    }
