"""Writing and verifying the audit chain. Every write goes through ``record``."""

import hashlib
import json

from django.db import connection, transaction

from .client_address import client_address
from .models import AuditEntry

GENESIS_HASH = "0" * 64
# Any constant: the key of the PostgreSQL advisory lock that serialises appends to the chain.
_CHAIN_LOCK_KEY = 7_263_011


def _content(entry: AuditEntry) -> dict:
    return {
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "environment_id": entry.environment_id,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
        "client_ip": entry.client_ip,
    }


def compute_hash(entry: AuditEntry, prev_hash: str) -> str:
    payload = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def record(
    *,
    action: str,
    actor=None,
    system: str = "",
    environment=None,
    obj=None,
    before=None,
    after=None,
    reason: str = "",
    outcome: str = AuditEntry.Outcome.OK,
    detail: str = "",
    request=None,
) -> AuditEntry:
    """Append one entry. ``actor`` is a user; ``system`` names the automatic part otherwise."""
    if actor is None and not system:
        raise ValueError("an audit entry needs a user or a system part as its actor")
    entry = AuditEntry(
        actor=actor,
        actor_label=actor.get_username() if actor else system,
        action=action,
        environment=environment,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "public_id", None) or getattr(obj, "pk", "")) if obj else "",
        before=before,
        after=after,
        reason=reason,
        outcome=outcome,
        detail=detail[:4000],
        request_id=getattr(request, "request_id", "") if request else "",
        client_ip=_client_ip(request),
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        entry.prev_hash = last or GENESIS_HASH
        entry.entry_hash = compute_hash(entry, entry.prev_hash)
        entry.save(force_insert=True)
    return entry


def _client_ip(request) -> str | None:
    if request is None:
        return None
    # The same address the log-in lockout uses, so the two agree behind the proxy.
    return client_address(request)


def verify_chain(batch_size: int = 2000):
    """Walk the chain oldest first: (entries checked, first broken entry id or None, why)."""
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        batch = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return checked, None, ""
        for entry in batch:
            if entry.prev_hash != expected_prev:
                return checked, entry.pk, "its link to the previous entry does not match"
            if compute_hash(entry, entry.prev_hash) != entry.entry_hash:
                return checked, entry.pk, "its content does not match its hash"
            expected_prev = entry.entry_hash
            checked += 1
            last_id = entry.pk
