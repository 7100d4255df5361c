"""gunicorn as the project starts it keeps an idle connection open for a client that reuses it
after a pause (gunicorn.conf.py). With gunicorn's defaults the sync worker closes every
connection after one answer, and the threaded one closes an idle connection after 2 s: a client
or proxy that reuses it at that moment gets a reset instead of an answer, and gunicorn logs
nothing. The pause here is past that old limit, so a server that closes idle connections that
early is caught every time, not by chance.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# gunicorn's default keep-alive (2 s) plus the second its threaded worker may take to notice.
PAUSE_SECONDS = 5


def dockerfile_command() -> list[str]:
    """The image's web command, from the Dockerfile's CMD (docker-compose.yml runs the same)."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            return json.loads(line.removeprefix("CMD "))
    raise AssertionError("no CMD in the Dockerfile")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(
    params=[
        pytest.param(dockerfile_command(), id="dockerfile"),
        pytest.param(["gunicorn", "config.wsgi"], id="no-worker-options"),
    ]
)
def gunicorn(request, tmp_path):
    """gunicorn started from the project root (so it reads gunicorn.conf.py) with the given
    command line, bound to a free port on 127.0.0.1, in the embedded mode."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), *request.param[1:]]
    if "--bind" in command:
        command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    else:
        command += ["--bind", f"127.0.0.1:{port}"]
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    environment.update(ROLLOUT_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _answers(port) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_connection_reused_after_a_pause_is_answered(gunicorn):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    try:
        connection.request("GET", "/login/")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        assert not first.will_close, "gunicorn closes the connection after every answer"
        opened = connection.sock

        time.sleep(PAUSE_SECONDS)
        connection.request("GET", "/login/")
        try:
            second = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError) as error:
            pytest.fail(f"gunicorn closed the idle connection: {error!r}")
        second.read()
        assert second.status == 200
        assert connection.sock is opened
    finally:
        connection.close()
