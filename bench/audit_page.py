#!/usr/bin/env python
"""The audit page and its export with 100,000 entries on PostgreSQL.

    .venv/bin/python bench/audit_page.py [--entries 100000] [--requests 200]

Fills the database ``rollout_bench_audit`` (dropped and re-created) with a valid hash chain,
then times full requests through Django's test client (middleware, session, ORM, template; no
network): the first page, deep pages, each filter, and the CSV and JSON exports.
"""

import os
import statistics
import sys
from datetime import timedelta
from pathlib import Path

import common  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
common.use_bench_settings("rollout_bench_audit")

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
    from django.utils import timezone

    from rollout.models import AuditEntry, Service
    from rollout.services import audit

    service = Service.objects.create(name="pix-immo-api")
    environments = [
        common.placeholder_environment(service, name) for name in ("preview", "production")
    ]
    common.person("viewer", "viewer")
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
    def get():
        response = client.get(url, params)
        if hasattr(response, "streaming_content"):
            for _chunk in response.streaming_content:
                pass
        assert response.status_code == 200, (url, params, response.status_code)

    return common.timings(get, repeat)


def main():
    args = common.arguments(__doc__, entries=100_000, requests=200)
    common.migrated_database(os.environ["DATABASE_URL"])
    environments = common.filled(f"{args.entries} entries", fill, args.entries)
    client = common.page_client("viewer", analyze="rollout_auditentry")
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
        p99 = common.percentile(values, 0.99)
        print(f"{label:36s} {statistics.median(values):7.1f}ms {p99:7.1f}ms")
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
