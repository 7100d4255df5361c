"""One shared httpx client per process and timeout.

Building an httpx.Client loads the CA bundle into a new SSL context, which costs tens of
milliseconds — more than the whole KV write on a fast network. Workers therefore share one
client (thread-safe, with its connection pool) instead of building one per task. Keyed by
process id so that a forked worker child never reuses its parent's sockets.
"""

import os
import threading
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

_NO_COOKIES = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
_clients: dict[tuple[int, float], httpx.Client] = {}
_lock = threading.Lock()


def shared_client(timeout: float) -> httpx.Client:
    key = (os.getpid(), timeout)
    with _lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            client = httpx.Client(
                # No cookie jar: every probe must be a fresh client, never a sticky one.
                cookies=_NO_COOKIES,
                timeout=timeout,
                max_redirects=3,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            _clients[key] = client
        return client
