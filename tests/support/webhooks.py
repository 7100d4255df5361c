"""A real HTTP server on 127.0.0.1 that receives webhooks (or any GET and POST) and answers as
it is told.

with WebhookReceiver() as slack:
    slack.answer(429, "rate_limited", headers={"Retry-After": "1"})  # next answer
    ...
    slack.received  # [{"path", "headers", "json", "body"}, ...]
"""

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, *, default_status: int = 200, default_body: str = "ok"):
        self.received: list[dict] = []
        self._answers: deque = deque()
        self.default = (default_status, default_body, {})
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
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
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/T000/B000/hook"

    def answer(self, status: int, body: str, headers: dict | None = None) -> None:
        """Queue the answer to the next request (then the default again)."""
        with self._lock:
            self._answers.append((status, body, headers or {}))

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
