"""Shared fixtures: named people for the roles, the edge stand-in as a real HTTP server, and a
real Celery worker process on Redis working against the test database."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User

from rollout import roles
from rollout.models import Environment, Service
from tests.support.changes import first_config
from tests.support.processes import stop_group
from tests.support.worker import celery_worker_command

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


def wait_for(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def client_for(user, **kwargs):
    """A Django test client logged in as ``user``."""
    from django.test import Client

    client = Client(**kwargs)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def htmx_client_for(user, **kwargs):
    """A logged-in client whose requests come from htmx, as the pages' forms send them."""
    return client_for(user, headers={"HX-Request": "true"}, **kwargs)


# --- people ------------------------------------------------------------------------------------


def _person(username, role=None, **extra):
    user = User.objects.create_user(username=username, password=PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def _person_fixture(username, role=None, **extra):
    """A fixture of one named person; it takes its name from the line that defines it."""

    @pytest.fixture
    def person(db):
        return _person(username, role, **extra)

    return person


viewer = _person_fixture("vera", roles.VIEWER)
release_manager = _person_fixture("rita", roles.RELEASE_MANAGER)
second_release_manager = _person_fixture("ralf", roles.RELEASE_MANAGER)
tech_lead = _person_fixture("theo", roles.TECH_LEAD)
devops = _person_fixture("dana", roles.DEVOPS)
admin_user = _person_fixture("adam", roles.ADMIN, is_staff=True)
outsider = _person_fixture("otto")


# --- the edge stand-in -------------------------------------------------------------------------

NAMESPACES = {"preview": "ns-preview-0001", "production": "ns-production-0001"}


@pytest.fixture(scope="session")
def edge_server():
    from tests.support.edge import EdgeStandIn

    with EdgeStandIn(namespaces=NAMESPACES, token=settings.CLOUDFLARE_API_TOKEN) as server:
        yield server


@pytest.fixture
def edge(edge_server, settings):
    """The stand-in with clean state, and Django pointed at it."""
    edge_server.reset(values=True)
    edge_server.knobs(propagation_delay=0, rate_limit=0, kv_faults=[])
    settings.CLOUDFLARE_API_BASE_URL = edge_server.api_base_url
    yield edge_server
    # A hung request the client gave up on is still served later (as Cloudflare may apply a
    # write whose answer was lost); let it land now, not in the next test.
    wait_for(
        lambda: all(r["status"] is not None or r.get("fault") for r in edge_server.requests()),
        timeout=15,
        message="the stand-in to finish requests still in flight",
    )


def make_environment(edge_server, name="production", service_name="pix-immo-api", connected=True):
    service, _ = Service.objects.get_or_create(name=service_name)
    return Environment.objects.create(
        service=service,
        name=name,
        cloudflare_account_id=edge_server.account,
        kv_namespace_id=NAMESPACES[name],
        qa_url=edge_server.qa_url(name),
        connected_at=time_now() if connected else None,
    )


def configured_environment(
    edge_server, name="production", percent=10, tag="B2a", service_name="pix-immo-api"
):
    """A connected environment with its initial desired config recorded (not yet written)."""
    from integrations.kv_value import CanarySettings

    environment = make_environment(edge_server, name=name, service_name=service_name)
    first_config(environment, CanarySettings(percent, tag, False), reason="initial")
    return environment


# --- environments ------------------------------------------------------------------------------
# ``production`` means one thing in every test: connected, nothing desired yet. Each other state
# has a fixture named after it, so a test's signature says what it starts from.


@pytest.fixture
def production(edge):
    """Production on the edge stand-in, connected, with no desired config yet."""
    return make_environment(edge)


@pytest.fixture
def production_configured(edge):
    """Production with its initial desired config (10 %, B2a) recorded as version 1 and not
    yet written to KV."""
    return configured_environment(edge)


@pytest.fixture
def production_at_b2a(edge):
    """Production with the B2 plan and its desired config at B2a 10 % (version 3), as a
    rollout in its first phase has it; nothing in KV."""
    from tests.support.rollouts import make_production_at_b2a

    return make_production_at_b2a(edge)


def skip_unless_installed(what: str) -> None:
    """Skip a test whose tool is missing on a developer's machine; under CI=true, where
    .ci/run installs everything, fail instead, so that a missing tool never passes as a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: .ci/run should have installed it")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session", autouse=True)
def flush_past_the_audit_truncate_trigger():
    """pytest-django empties the tables after a transactional test with one TRUNCATE, which the
    audit table refuses (migration 0012). The flush turns that trigger off inside its own
    transaction, as an operator archiving the table deliberately would, and on again."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    trigger = "ALTER TABLE rollout_auditentry {} TRIGGER rollout_audit_no_truncate;"

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if statements and "rollout_auditentry" in tables:
            return [trigger.format("DISABLE"), *statements, trigger.format("ENABLE")]
        return statements

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture(scope="session", autouse=True)
def flush_keeps_permissions_and_content_types():
    """After a transactional test the flush empties every table and runs post_migrate again,
    which re-creates every permission and content type: about a second a test. Those two
    tables only ever hold what the migrations made, so the flush keeps them and re-creates
    just the role groups."""
    from django.core.management.commands import flush
    from django.db.backends.postgresql.operations import DatabaseOperations

    kept = {"auth_permission", "django_content_type"}
    original_flush = DatabaseOperations.sql_flush
    original_signal = flush.emit_post_migrate_signal

    def sql_flush(self, style, tables, **kwargs):
        return original_flush(self, style, [t for t in tables if t not in kept], **kwargs)

    def roles_only(verbosity, interactive, database, **kwargs):
        roles.ensure_roles()

    DatabaseOperations.sql_flush = sql_flush
    flush.emit_post_migrate_signal = roles_only
    yield
    DatabaseOperations.sql_flush = original_flush
    flush.emit_post_migrate_signal = original_signal


def time_now():
    from django.utils import timezone

    return timezone.now()


# --- Celery ------------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server for the suite: a real broker that a test may stop and restart."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10, message="redis-server to start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def flush(self):
        redis.Redis.from_url(self.url).flushdb()


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    server = RedisServer(int(os.environ["TEST_REDIS_PORT"]))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_url(redis_server):
    if redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


def worker_environment(broker, **overrides):
    """The environment of a worker process: the real settings module, pointed at the test
    database, the test broker and the edge stand-in."""
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=(
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        ),
        CELERY_BROKER_URL=broker,
        CLOUDFLARE_API_BASE_URL=settings.CLOUDFLARE_API_BASE_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class WorkerProcess:
    """``celery worker`` as a child process, with its log in a file for failure reports."""

    def __init__(self, env, *, pool="threads", concurrency=4, name="w1"):
        self.log_path = ROOT / "var" / "test" / f"worker-{name}-{os.getpid()}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            celery_worker_command(pool=pool, concurrency=concurrency, hostname=f"{name}@%h"),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: "ready." in self.log_path.read_text() or self.process.poll() is not None,
            timeout=30,
            message="the Celery worker to start",
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited at start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self):
        """SIGKILL, as a crashed machine would: no cleanup, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        stop_group(self.process)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def start_worker(django_db_setup, django_db_blocker, broker_url, edge):
    """Start workers on demand inside a test; all are stopped at its end."""
    started = []

    def start(**kwargs):
        overrides = kwargs.pop("env", {})
        broker = kwargs.pop("broker", broker_url)
        worker = WorkerProcess(worker_environment(broker, **overrides), **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker):
    return start_worker()


# --- the company's identity provider ------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider_server(live_server):
    """node-oidc-provider on 127.0.0.1, sending people back to the live server."""
    from tests.support.oidc_provider import OidcProvider, installed

    missing = installed()
    if missing:
        skip_unless_installed(missing)
    with OidcProvider(
        redirect_uri=f"{live_server.url}/oidc/callback/",
        post_logout_redirect_uri=f"{live_server.url}/login/",
    ) as provider:
        yield provider


@pytest.fixture
def company_login(oidc_provider_server, settings):
    """Company login on, against the provider, whose people, groups and good behaviour are
    restored for each test."""
    from tests.support import oidc_provider

    oidc_provider_server.reset()
    settings.OIDC_DISCOVERY_URL = oidc_provider_server.discovery_url
    settings.OIDC_RP_CLIENT_ID = oidc_provider.CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = oidc_provider.CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_ROLE_GROUPS = oidc_provider.ROLE_GROUPS
    return oidc_provider_server


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """Per module, not per session: Playwright's sync API runs an event loop in this thread
    while it is open, and other tests (asyncio.run in the sampler, say) need it closed."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; Django's ORM would
    # take that for an async context and refuse. The tests call the ORM synchronously.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

    from tests.support.browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, live_server):
    """``open_page(user)``: a logged-in page in its own browser context."""
    from tests.support.browser import log_in

    contexts = []

    def open_as(user):
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        log_in(page, live_server.url, user.username, PASSWORD)
        return page

    yield open_as
    for context in contexts:
        context.close()
