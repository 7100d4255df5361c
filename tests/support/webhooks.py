"""A real HTTP server on 127.0.0.1 that receives webhooks and answers as it is told.

with WebhookReceiver() as slack:
    slack.answer(429, "rate_limited", headers={"Retry-After": "1"})  # next answer
    ...
    slack.received  # [{"path", "headers", "json", "body"}, ...]
"""

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def read_body(handler) -> str:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length).decode("utf-8", "replace")


class Serving:
    """Serves ``self._server`` (a ThreadingHTTPServer) on a thread inside a ``with`` block."""

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


def send_answer(handler, status: int, text: str, headers: dict, content_type: str) -> None:
    """Answer the request ``handler`` is serving with ``text`` and ``headers``."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(text.encode())))
    handler.end_headers()
    handler.wfile.write(text.encode())


class WebhookReceiver(Serving):
    def __init__(self, *, default_status: int = 200, default_body: str = "ok"):
        self.received: list[dict] = []
        self._answers: deque = deque()
        self.default = (default_status, default_body, {})
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

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/T000/B000/hook"

    def answer(self, status: int, body: str, headers: dict | None = None) -> None:
        """Queue the answer to the next request (then the default again)."""
        with self._lock:
            self._answers.append((status, body, headers or {}))
