#!/usr/bin/env python
"""The audit page and its export with 100,000 entries on PostgreSQL.

    .venv/bin/python bench/audit_page.py [--entries 100000] [--requests 200]

Fills the database ``rollout_bench_audit`` (dropped and re-created) with a valid hash chain,
then times full requests through Django's test client (middleware, session, ORM, template; no
network): the first page, deep pages, each filter, and the CSV and JSON exports.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from common import migrated_database, percentile, placeholder_environment  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollout_bench_audit"
    ),
    SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
    LOG_LEVEL="WARNING",
    ALLOWED_HOSTS="testserver",
)

ACTIONS = [
    "config.percent_change",
    "config.written",
    "config.in_effect",
    "approval.requested",
    "approval.approved",
    "config.emergency_stop",
    "environment.connection_checked",
]
ACTORS = ["rita", "ralf", "theo", "dana", "kv-writer", "drift-check"]


def fill(count):
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from rollout.models import AuditEntry, Service
    from rollout.services import audit

    service = Service.objects.create(name="pix-immo-api")
    environments = [placeholder_environment(service, name) for name in ("preview", "production")]
    viewer = User.objects.create_user("viewer", password="bench-pass-123")
    viewer.groups.add(Group.objects.get(name="viewer"))
    start = timezone.now() - timedelta(days=90)
    previous = audit.GENESIS_HASH
    batch = []
    for index in range(count):
        entry = AuditEntry(
            created_at=start + timedelta(seconds=index * 77),
            actor_label=ACTORS[index % len(ACTORS)],
            action=ACTIONS[index % len(ACTIONS)],
            environment=environments[index % 2],
            object_type="ConfigChange",
            object_id=f"{index:08d}",
            before={"canary_percent": index % 100},
            after={"canary_percent": (index + 5) % 100},
            reason=f"phase step {index}" + (" upload errors" if index % 997 == 0 else ""),
            detail=f"version {index}",
        )
        entry.prev_hash = previous
        entry.entry_hash = previous = audit.compute_hash(entry, previous)
        batch.append(entry)
        if len(batch) == 5000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)
    return environments


def timed(client, url, params, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, params)
        if hasattr(response, "streaming_content"):
            for _chunk in response.streaming_content:
                pass
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, params, response.status_code)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    migrated_database(os.environ["DATABASE_URL"])
    from django.test import Client

    started = time.perf_counter()
    environments = fill(args.entries)
    print(f"filled {args.entries} entries in {time.perf_counter() - started:.1f} s")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rollout_auditentry")
    client = Client()
    assert client.login(username="viewer", password="bench-pass-123")
    from rollout.models import AuditEntry

    middle = AuditEntry.objects.order_by("id")[args.entries // 2].pk
    cases = [
        ("first page", {}),
        ("deep page (before the middle id)", {"before": middle}),
        ("filter: actor", {"actor": "theo"}),
        ("filter: action prefix", {"action": "approval"}),
        ("filter: environment", {"environment": str(environments[1].public_id)}),
        ("filter: date range (1 week)", {"since": "2026-09-01", "until": "2026-09-07"}),
        ("filter: free text (rare)", {"q": "upload errors"}),
        ("filters combined", {"actor": "rita", "action": "config", "q": "step"}),
    ]
    print(f"{'case':36s} {'median':>9s} {'p99':>9s}   ({args.requests} requests each)")
    for label, params in cases:
        values = timed(client, "/audit/", params, args.requests)
        print(f"{label:36s} {statistics.median(values):7.1f}ms {percentile(values, 0.99):7.1f}ms")
    for fmt in ("csv", "json"):
        values = timed(client, f"/audit/export.{fmt}", {"actor": "theo"}, 3)
        print(
            f"export {fmt} (actor filter, ~{args.entries // len(ACTORS)} rows) "
            f"median {statistics.median(values):7.1f}ms"
        )
        values = timed(client, f"/audit/export.{fmt}", {}, 2)
        print(f"export {fmt} (all {args.entries} rows) median {statistics.median(values):7.1f}ms")


if __name__ == "__main__":
    main()
