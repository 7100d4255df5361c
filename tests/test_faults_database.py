"""Database faults with real processes: PostgreSQL stopped and started again while gunicorn and a
Celery worker run against it. While it is away every request answers 503 "database unreachable,
retrying" (never a 500 or a traceback), logged once each. Both processes recover on their own
(no process restarted): the overview answers again, and a change requested through the web
afterwards is recorded and reaches "in effect" through the same worker. Reports "requested /
applied exactly once / lost / duplicated" (tests/support/fault_figures.py).

The machine's PostgreSQL (port 5432) is shared with other test runs, so this test starts a
private cluster of its own (initdb as the ``postgres`` OS user) and restarts only that.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import (
    NAMESPACES,
    PASSWORD,
    ROOT,
    WorkerProcess,
    skip_unless_installed,
    wait_for,
)
from tests.support.fault_figures import change_figures, report
from tests.support.processes import stop_group

pytestmark = pytest.mark.worker

PG_BIN = Path("/usr/lib/postgresql")
DATABASE = "rollout_fault_db"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_tool(name: str) -> str:
    versions = sorted(
        (p for p in PG_BIN.glob("*/bin") if (p / name).exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        skip_unless_installed(f"the PostgreSQL server binary {name} (under {PG_BIN})")
    return str(versions[-1] / name)


class PrivateCluster:
    """A throw-away PostgreSQL cluster owned by the ``postgres`` OS user (initdb refuses root)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="rollout-pg-"))
        shutil.chown(self.root, user="postgres")
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.started = False

    def _as_postgres(self, *command, timeout=60):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=True
        )

    def _pg_ctl(self, action, *extra):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        command = [pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w"]
        return self._as_postgres(*command, "-o", options, *extra, action)

    def start(self):
        self._as_postgres(
            pg_tool("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )
        self._pg_ctl("start")
        self.started = True
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def stop_server(self):
        """Fast shutdown: open connections are cut, as in a restart or a failover."""
        self._pg_ctl("stop", "-m", "fast")

    def start_server(self):
        self._pg_ctl("start")

    def stop(self):
        if self.started:
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, name=DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture
def private_postgres():
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class Gunicorn:
    """``gunicorn config.wsgi`` as a child process in its own session, log in a file."""

    def __init__(self, env, port):
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = ROOT / "var" / "test" / f"gunicorn-pgfault-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=30, interval=0.2, message="gunicorn to answer")

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/login/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self):
        stop_group(self.process)
        self.log.close()


SEED = """
from django.contrib.auth.models import Group, User
from django.utils import timezone
from integrations.kv_value import CanarySettings
from rollout import roles
from rollout.services import controls
from rollout.models import Environment, Service
user = User.objects.create_user(username="rita", password={password!r})
user.groups.add(Group.objects.get(name=roles.RELEASE_MANAGER))
environment = Environment.objects.create(
    service=Service.objects.create(name="pix-immo-api"),
    name="production",
    cloudflare_account_id={account!r},
    kv_namespace_id={namespace!r},
    qa_url={qa_url!r},
    connected_at=timezone.now(),
)
controls.create_initial_config(
    environment=environment, settings=CanarySettings(10, "B2a", False),
    reason="initial", system="test",
)
print("ENVIRONMENT", environment.pk, environment.public_id)
"""


def manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def change_states(url: str, environment_pk: int) -> dict[int, str]:
    with psycopg.connect(url, connect_timeout=3) as connection:
        rows = connection.execute(
            "SELECT version, state FROM rollout_configchange WHERE environment_id = %s",
            (environment_pk,),
        ).fetchall()
    return dict(rows)


def changes_after(url: str, environment_pk: int, version: int) -> list[tuple[str, dict]]:
    """(state, settings) of the changes newer than ``version``, read from the private cluster."""
    with psycopg.connect(url, connect_timeout=3) as connection:
        return connection.execute(
            "SELECT state, after FROM rollout_configchange"
            " WHERE environment_id = %s AND version > %s ORDER BY version",
            (environment_pk, version),
        ).fetchall()


def logged_in_client(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=5)
    client.get("/login/").raise_for_status()
    response = client.post(
        "/login/",
        data={
            "username": "rita",
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text[:500]
    return client


class Poller(threading.Thread):
    """GETs the overview fragment every 100 ms until stopped, as the page's HTMX poll does;
    counts the answers by status and keeps the first 503's body and headers."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.statuses = Counter()
        self.unavailable = None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                response = self.client.get("/", headers={"HX-Request": "true"})
                status = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.statuses[status] += 1
            if status == 503 and self.unavailable is None:
                self.unavailable = response
            self.halt.wait(0.1)


def unavailable_lines(log_path: Path) -> list[dict]:
    """The JSON log lines of the 503 answers in gunicorn's log."""
    lines = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "rollout.middleware":
                lines.append(record)
    return lines


def test_postgres_away_and_back_while_web_and_worker_run(private_postgres, edge, broker_url):
    started = time.monotonic()
    database_url = private_postgres.url()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        CLOUDFLARE_API_BASE_URL=edge.api_base_url,
        CLOUDFLARE_API_TOKEN=edge.token,
        PYTHONUNBUFFERED="1",
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    seeded = manage(
        env,
        "shell",
        "-c",
        SEED.format(
            password=PASSWORD,
            account=edge.account,
            namespace=NAMESPACES["production"],
            qa_url=edge.qa_url("production"),
        ),
    )
    environment_pk, public_id = seeded.split("ENVIRONMENT", 1)[1].split()[:2]
    environment_pk = int(environment_pk)

    worker = gunicorn = client = None
    try:
        worker = WorkerProcess(env, name="pgfault")
        gunicorn = Gunicorn(env, free_port())
        wait_for(
            lambda: change_states(database_url, environment_pk).get(1) == "in_effect",
            timeout=20,
            interval=0.2,
            message="the initial config to go into effect",
        )
        worker_pid = worker.process.pid
        client = logged_in_client(gunicorn.url)
        assert client.get("/").status_code == 200
        edge_log_before = len(edge.requests())

        # Stop PostgreSQL while a viewer polls the overview: every pooled connection of
        # gunicorn's and the worker's threads is now dead, and new ones are refused.
        poller = Poller(logged_in_client(gunicorn.url))
        poller.start()
        time.sleep(0.5)
        outage_started = time.monotonic()
        private_postgres.stop_server()

        # While it is away: a short page for a person, a fragment for the poller, both 503.
        page = client.get("/")
        assert page.status_code == 503, page.text[:1000]
        assert page.headers["Retry-After"] == "5"
        assert "Database unreachable, retrying" in page.text and "Traceback" not in page.text
        time.sleep(1.5)  # the poller sees the outage for a while
        private_postgres.start_server()
        outage_seconds = time.monotonic() - outage_started

        # Recovery, bounded: the overview answers 200 again within a few tries.
        tries = []
        for _ in range(20):
            try:
                status = client.get("/").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            tries.append(status)
            if status == 200:
                break
            time.sleep(0.5)
        time.sleep(1.0)
        poller.halt.set()
        poller.join(timeout=10)
        print(
            f"postgres away for {outage_seconds:.2f}s; overview after it: {tries}; "
            f"viewer polls during the window by status: {dict(poller.statuses)}"
        )
        assert tries[-1] == 200, f"the overview never answered 200 again: {tries}"
        assert set(poller.statuses) <= {200, 503}, f"not 503 while away: {poller.statuses}"
        assert poller.statuses[503] >= 3, f"the poller never saw the outage: {poller.statuses}"
        fragment = poller.unavailable
        assert fragment.headers["Retry-After"] == "5"
        assert fragment.headers["HX-Reswap"] == "innerHTML"
        assert "Database unreachable, retrying" in fragment.text and "<html" not in fragment.text
        # One log line per 503 answer, a warning without a traceback.
        answered_503 = 1 + poller.statuses[503] + tries.count(503)
        logged = unavailable_lines(gunicorn.log_path)
        assert len(logged) == answered_503, (len(logged), answered_503)
        assert all(r["level"] == "WARNING" and "exc_info" not in r for r in logged)
        assert all(r.get("request_id") for r in logged)
        assert "Traceback" not in gunicorn.log_path.read_text()

        # A change requested through the web after the restart: lowering is one-person.
        page = client.get(f"/environments/{public_id}/")
        assert page.status_code == 200
        response = client.post(
            f"/environments/{public_id}/percent/",
            data={
                "canary_percent": "5",
                "canary_tag": "B2a",
                "reason": "lower after the database restart",
                "expected_version": "1",
                "confirmed": "true",
            },
            headers={"HX-Request": "true", "X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert response.status_code == 200, response.text[:1000]
        assert "version 2" in response.text
        wait_for(
            lambda: change_states(database_url, environment_pk).get(2) == "in_effect",
            timeout=20,
            interval=0.2,
            message="the change requested after the restart to go into effect",
        )
        assert worker.process.poll() is None and worker.process.pid == worker_pid, (
            "the worker must recover without a restart"
        )
        assert gunicorn.process.poll() is None

        figures = change_figures(
            edge,
            NAMESPACES["production"],
            changes_after(database_url, environment_pk, version=1),
            requested=1,
            since=edge_log_before,
        )
        figures["overview polls answered 503 while away"] = poller.statuses[503]
        figures["answered 500"] = poller.statuses[500]
        report("PostgreSQL restarted while the web and the worker run", figures)
        assert figures["recorded"] == 1 and figures["applied exactly once"] == 1
        assert figures["lost"] == 0 and figures["duplicated writes"] == 0
        assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 5
        assert time.monotonic() - started < 60
    finally:
        if client is not None:
            client.close()
        if gunicorn is not None:
            gunicorn.stop()
        if worker is not None:
            worker.stop()
