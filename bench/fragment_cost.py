#!/usr/bin/env python
"""Server cost of one poll of each live fragment, in-process (Django's test client, no network,
no other load): SQL statements and time per request, with the one-second fragment cache on and
off (LIVE_FRAGMENT_CACHE_SECONDS).

    .venv/bin/python bench/fragment_cost.py [--polls 300]

Uses the database ``rollout_bench_fragments`` on the machine's PostgreSQL (dropped and
re-created): one service, two environments with their initial config and 20 changes each, one
viewer. With the cache on, every poll after the first within a second is served from it, as it
is for all but one of the 25 polls a second that 50 viewers send.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import configured_environment, recreate_database  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_NAME = "rollout_bench_fragments"
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}",
    CELERY_BROKER_URL="redis://127.0.0.1:6379/12",
    SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
    ALLOWED_HOSTS="testserver",
    LOG_LEVEL="ERROR",
)


def seed():
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from integrations.kv_value import CanarySettings
    from rollout import roles
    from rollout.models import Service
    from rollout.services import controls

    call_command("migrate", verbosity=0)
    viewer = User.objects.create_user(username="viewer", password="bench-pass-2026")
    viewer.groups.add(Group.objects.get(name=roles.VIEWER))
    service = Service.objects.create(name="pix-immo-api")
    for name in ("preview", "production"):
        environment = configured_environment(
            service,
            name,
            account="bench-account",
            namespace=f"ns-{name}",
            qa_url=f"http://127.0.0.1:9/{name}/api/qa",
        )
        for version in range(1, 21):
            controls.request_change(
                environment=environment,
                settings=CanarySettings(10 + version % 5, "B2a", False),
                kind="percent_change",
                expected_version=version,
                reason="bench",
                system="bench",
            )
    return viewer


def measure(client, url, polls):
    from django.db import connection

    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    for _ in range(20):  # warm up: connections, templates, the cache
        client.get(url, HTTP_HX_REQUEST="true")
    with connection.execute_wrapper(count):
        client.get(url, HTTP_HX_REQUEST="true")
    times = []
    for _ in range(polls):
        started = time.perf_counter()
        response = client.get(url, HTTP_HX_REQUEST="true")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return len(statements), statistics.median(times), times[int(0.9 * len(times))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=300)
    args = parser.parse_args()
    recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    viewer = seed()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the writes seed() queued
    from rollout.models import Environment

    production = Environment.objects.get(name="production")
    client = Client()
    client.force_login(viewer)
    print(f"load avg (1 min) at start {os.getloadavg()[0]:.2f}")
    for seconds in (0, 1):
        settings.LIVE_FRAGMENT_CACHE_SECONDS = seconds
        cache.clear()
        for name, url in (
            ("overview", "/"),
            ("environment", f"/environments/{production.public_id}/"),
        ):
            queries, median, p90 = measure(client, url, args.polls)
            print(
                f"cache {'on ' if seconds else 'off'} {name:12} {queries} SQL statements, "
                f"median {median:.1f} ms, p90 {p90:.1f} ms"
            )


if __name__ == "__main__":
    main()
