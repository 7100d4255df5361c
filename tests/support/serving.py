"""A real HTTP server of the tests on 127.0.0.1, answering on a thread of its own."""

import threading


class Serving:
    """Serves ``self.httpd`` (an ``http.server`` server) for the length of a ``with`` block."""

    httpd = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        # A short poll: shutdown() waits for the loop to notice, which each test's end pays.
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
