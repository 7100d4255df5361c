#!/usr/bin/env python
"""Clients that reuse an idle keep-alive connection against gunicorn as the project starts it.

    .venv/bin/python bench/keepalive_race.py [--duration 60] [--clients 20] [--idle 1.9 2.1]
        [--pollers 10] [--keepalive SECONDS]

Starts gunicorn (``config.wsgi``, the project's ``gunicorn.conf.py``, ``--workers 2 --threads
4`` as scripts/demo does) in the embedded mode, then runs two kinds of client, each
thread with its own ``httpx.Client`` limited to one connection:

- ``--clients`` reusers: one request, then an idle pause drawn from ``--idle`` (seconds, from
  the response to the next request), again and again on the same pooled connection, as the load
  test's writers do every 2 s;
- ``--pollers`` background clients, a request every 100 ms each (100 requests a second from
  10), so that gunicorn's main loop is awake all the time, as under the load test (an idle
  gthread worker looks at its keep-alive connections only once a second).

``--keepalive`` passes gunicorn's ``--keep-alive`` on the command line (overriding
``gunicorn.conf.py``), to compare a value with the configured one. Prints, for the reusers, the
requests sent, the answers, the connection-level errors by kind (``ReadError``: the server reset
a connection that held our request; ``RemoteProtocolError``: it closed the connection without
answering) and how often a reuser had to open a new connection. Exits non-zero on any error.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import answers  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8124"))
PATH = "/login/"  # the log-in form: no database query


def reuser(base_url, idle, stop, tally):
    port = None
    with httpx.Client(base_url=base_url, limits=httpx.Limits(max_connections=1)) as client:
        while not stop.is_set():
            tally["sent"] += 1
            try:
                response = client.get(PATH)
            except httpx.TransportError as error:
                tally[type(error).__name__] += 1
                port = None
            else:
                tally[f"HTTP {response.status_code}"] += 1
                local = response.extensions["network_stream"].get_extra_info("client_addr")
                if port is not None and local[1] != port:
                    tally["new connection after a pause"] += 1
                port = local[1]
            stop.wait(random.uniform(*idle))


def poller(base_url, stop):
    with httpx.Client(base_url=base_url) as client:
        while not stop.is_set():
            try:
                client.get(PATH)
            except httpx.TransportError:
                pass
            stop.wait(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--idle", type=float, nargs=2, default=(1.9, 2.1))
    parser.add_argument("--pollers", type=int, default=10)
    parser.add_argument("--keepalive", type=int, help="override gunicorn.conf.py")
    args = parser.parse_args()

    base_url = f"http://127.0.0.1:{PORT}"
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi"]
    command += ["--bind", f"127.0.0.1:{PORT}", "--workers", "2", "--threads", "4"]
    if args.keepalive is not None:
        command += ["--keep-alive", str(args.keepalive)]
    with tempfile.TemporaryDirectory() as data:
        environment = dict(os.environ, ROLLOUT_VAR_DIR=data, LOG_LEVEL="WARNING")
        log = open(Path(data) / "gunicorn.log", "w+")  # noqa: SIM115 - read back at the end
        server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not answers(base_url + PATH):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn did not start:\n{log.read()}")
                time.sleep(0.2)
            stop, tally = threading.Event(), Counter()
            threads = [
                threading.Thread(target=reuser, args=(base_url, args.idle, stop, tally))
                for _ in range(args.clients)
            ]
            threads += [
                threading.Thread(target=poller, args=(base_url, stop)) for _ in range(args.pollers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(args.duration)
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.seek(0)
            server_log = log.read().strip()
    keepalive = "gunicorn.conf.py" if args.keepalive is None else f"{args.keepalive} s"
    print(
        f"{args.clients} reusers, idle {args.idle[0]}-{args.idle[1]} s, {args.pollers} pollers, "
        f"{args.duration:.0f} s, keep-alive {keepalive}"
    )
    for name, count in sorted(tally.items()):
        print(f"  {name}: {count}")
    errors = tally["ReadError"] + tally["RemoteProtocolError"] + tally["WriteError"]
    print(f"connection errors: {errors}")
    print("gunicorn log:", server_log or "(empty)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
