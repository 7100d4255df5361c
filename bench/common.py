"""What the benchmark scripts share. They are run as ``python bench/<script>.py``, so this
module sits on their import path as ``common``."""

import argparse
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

PASSWORD = "bench-pass-123"
ROOT = Path(__file__).resolve().parent.parent


def arguments(doc: str, **defaults: int) -> argparse.Namespace:
    """The command line of a benchmark: ``--name N`` for each whole-number default; ``--help``
    shows the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    return parser.parse_args()


def use_bench_settings(database_name: str, **extra: str) -> None:
    """Point Django at the production settings and the benchmark's own database
    (``BENCH_DATABASE_URL`` instead, when it is set); ``extra`` adds or overrides settings."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=os.environ.get(
            "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database_name}"
        ),
        SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="testserver",
        **extra,
    )


def bench_settings(database_url: str, broker_url: str) -> None:
    """The environment of a benchmark that runs the real settings module and a worker: its own
    database and broker, a fast edge poll, warnings only."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        EDGE_POLL_INTERVAL_SECONDS="0.05",
        SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
        LOG_LEVEL="WARNING",
    )


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (the URL's last part), so that
    nothing of an earlier run is measured again."""
    parts = urlsplit(url)
    where = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    name = parts.path.lstrip("/")
    subprocess.run(["dropdb", *where, "--if-exists", name], check=True)
    subprocess.run(["createdb", *where, name], check=True)


def migrated_database(url: str) -> None:
    """A fresh database (``recreate_database``), Django set up on it and migrated."""
    recreate_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def person(username: str, group: str):
    """A user of the page benchmarks with the role ``group``; log in with ``PASSWORD``."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


def page_client(username: str, *, analyze: str):
    """After the fill: fresh planner statistics of the table ``analyze`` (as autovacuum would
    have them in production), and Django's test client logged in as ``username``."""
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {analyze}")
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def filled(what: str, fill, *args):
    """``fill(*args)``, saying how long filling ``what`` took; returns what it returned."""
    started = time.perf_counter()
    result = fill(*args)
    print(f"filled {what} in {time.perf_counter() - started:.1f} s")
    return result


def timings(action, repeat: int) -> list[float]:
    """Milliseconds each of ``repeat`` calls of ``action()`` took."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def placeholder_environment(service, name="production"):
    """An environment whose addresses lead nowhere: for benchmarks of pages and ingestion,
    which never call the edge or KV."""
    from rollout.models import Environment

    return Environment.objects.create(
        service=service,
        name=name,
        cloudflare_account_id="bench",
        kv_namespace_id=f"ns-{name}",
        qa_url=f"http://127.0.0.1:9/{name}/api/qa",
    )


def configured_environment(service, name, *, account, namespace, qa_url):
    """A connected environment of ``service`` with its initial desired config (10 %, B2a)
    recorded: where the benchmarks start."""
    from django.utils import timezone

    from integrations.kv_value import CanarySettings
    from rollout.models import Environment
    from rollout.services import controls

    environment = Environment.objects.create(
        service=service,
        name=name,
        cloudflare_account_id=account,
        kv_namespace_id=namespace,
        qa_url=qa_url,
        connected_at=timezone.now(),
    )
    controls.create_initial_config(
        environment=environment,
        settings=CanarySettings(10, "B2a", False),
        reason="initial",
        system="bench",
    )
    return environment


def started(command, log):
    """``command`` run from the project's root with its output to ``log``, in a session of its
    own so that it is stopped as a group."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float, what: str, *, every: float):
    """The first truthy answer of ``predicate()``, asked every ``every`` seconds; after
    ``timeout`` seconds the benchmark stops, saying it timed out waiting for ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within two seconds: a server the benchmark started is up."""
    import httpx  # here, not at the top: load_test.py lets gevent patch the network first

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def percentile(values, fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` from 0 to 1); NaN when there is no value."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]
