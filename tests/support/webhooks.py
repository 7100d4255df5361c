"""A real HTTP server on 127.0.0.1 that receives webhooks (or any GET and POST) and answers as
it is told.

with WebhookReceiver() as slack:
    slack.answer(429, "rate_limited", headers={"Retry-After": "1"})  # next answer
    ...
    slack.received  # [{"path", "headers", "json", "body"}, ...]
    slack.bodies()  # the JSON of each request, in order
"""

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import Serving


def read_body(handler) -> str:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length).decode("utf-8", "replace")


def send_answer(handler, status: int, text: str, headers: dict, content_type: str) -> None:
    """Answer the request ``handler`` is serving with ``text`` and ``headers``."""
    handler.send_response(status)
    for name, value in {"Content-Type": content_type, **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(text.encode())))
    handler.end_headers()
    handler.wfile.write(text.encode())


class WebhookReceiver(Serving):
    def __init__(
        self,
        *,
        default_status: int = 200,
        default_body: str = "ok",
        default_headers: dict | None = None,
        path: str = "/services/T000/B000/hook",
    ):
        self.received: list[dict] = []
        self._answers: deque = deque()
        self.default = (default_status, default_body, default_headers or {})
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = read_body(self)
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                with receiver._lock:
                    receiver.received.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "json": parsed,
                            "body": body,
                        }
                    )
                    status, text, headers = (
                        receiver._answers.popleft() if receiver._answers else receiver.default
                    )
                send_answer(self, status, text, headers, "text/plain")

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = self.base_url + path

    def answer(self, status: int, body: str, headers: dict | None = None) -> None:
        """Queue the answer to the next request (then the default again)."""
        with self._lock:
            self._answers.append((status, body, headers or {}))

    def bodies(self) -> list:
        with self._lock:
            return [entry["json"] for entry in self.received]
