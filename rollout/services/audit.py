"""Writing and verifying the audit chain. Every write goes through ``record``.

Each entry is sealed with an HMAC-SHA256 under the current audit key (``AUDIT_HMAC_KEY``, id
``AUDIT_HMAC_KEY_ID``), over the previous entry's hash and the entry's content including the
key id. The key lives outside the database, so someone who can write to the database cannot
re-seal an edited entry and the entries after it. Rotated-out keys stay available for
verifying (``AUDIT_HMAC_OLD_KEYS``). Entries written before the chain was keyed carry an empty
key id and a plain SHA-256; they still verify, but only as the chain's oldest part: an unkeyed
entry after a keyed one is a forgery (someone without the key re-hashing the tail).

Deleting the newest entries, or all of them, leaves a chain that verifies; the checkpoints of
the chain's head outside the database (rollout/services/audit_checkpoints.py) expose that.
"""

import hashlib
import hmac
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from ..client_address import client_address
from ..models import AuditEntry

GENESIS_HASH = "0" * 64
# Any constant: the key of the PostgreSQL advisory lock that serialises appends to the chain.
_CHAIN_LOCK_KEY = 7_263_011


# What an entry says about its act, as stored: sealed into its hash, and exported as it is.
RECORDED_FIELDS = (
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "outcome",
    "detail",
    "request_id",
    "client_ip",
)


def recorded(entry: AuditEntry) -> dict:
    """The ``RECORDED_FIELDS`` of ``entry`` by name."""
    return {name: getattr(entry, name) for name in RECORDED_FIELDS}


def _content(entry: AuditEntry) -> dict:
    content = {
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "environment_id": entry.environment_id,
        **recorded(entry),
    }
    # Sealed only when set, so every entry written before the field existed still verifies.
    if entry.via:
        content["via"] = entry.via
    return content


class UnknownKey(Exception):
    """An entry names a key id that is not configured."""


def known_keys() -> dict[str, str]:
    """Every configured key by id: the current one and those kept for verifying older entries."""
    keys = dict(settings.AUDIT_HMAC_OLD_KEYS)
    if settings.AUDIT_HMAC_KEY:
        keys[settings.AUDIT_HMAC_KEY_ID] = settings.AUDIT_HMAC_KEY
    return keys


def compute_hash(entry: AuditEntry, prev_hash: str, keys: dict[str, str] | None = None) -> str:
    """The entry's seal: HMAC-SHA256 under the key ``entry.key_id`` names, or for an unkeyed
    (legacy) entry the plain SHA-256 it was written with."""
    content = _content(entry)
    if not entry.key_id:
        payload = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()
    key = (known_keys() if keys is None else keys).get(entry.key_id)
    if key is None:
        raise UnknownKey(entry.key_id)
    content["key_id"] = entry.key_id
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    message = f"{prev_hash}\n{payload}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# (person, channel) while a person acts through a channel other than a page; see ``acting_via``.
_acting_via: ContextVar[tuple | None] = ContextVar("acting_via", default=None)


@contextmanager
def acting_via(person, via: str):
    """Every entry written inside whose actor is ``person`` records ``via`` (e.g.
    ``"slack:U024BE7LH"``): the services a chat button calls stay the page's services, and the
    entries of other people they write (the requester's change an approval applies) stay
    without it."""
    token = _acting_via.set((person, via))
    try:
        yield
    finally:
        _acting_via.reset(token)


def _via_of(actor) -> str:
    acting = _acting_via.get()
    if acting is None or actor is None or acting[0] is None or acting[0].pk != actor.pk:
        return ""
    return acting[1]


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
    via: str = "",
) -> AuditEntry:
    """Append one entry. ``actor`` is a user; ``system`` names the automatic part otherwise.
    ``via`` names the channel of an act that came through no page (see ``acting_via``): a
    chat button, an API token."""
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
        via=(via or _via_of(actor))[:200],
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        entry.prev_hash = last or GENESIS_HASH
        # Without a key (a development set-up; a secure deployment refuses to start) the entry
        # is sealed the old, unkeyed way.
        entry.key_id = settings.AUDIT_HMAC_KEY_ID if settings.AUDIT_HMAC_KEY else ""
        entry.entry_hash = compute_hash(entry, entry.prev_hash)
        entry.save(force_insert=True)
    return entry


def refused(
    *, action: str, actor, detail: str, environment=None, obj=None, reason: str = "", request=None
):
    """A refused act, written by the service that refused it (``outcome`` refused)."""
    return record(
        action=action,
        actor=actor,
        environment=environment,
        obj=obj,
        outcome=AuditEntry.Outcome.REFUSED,
        reason=reason,
        detail=detail,
        request=request,
    )


# The refusals the enclosing ``refusals_audited`` blocks answer for, while they run.
_answered_outside: ContextVar[tuple] = ContextVar("refusals_answered_outside", default=())


@contextmanager
def refusals_audited(
    action: str,
    refusals,
    *,
    actor,
    environment=None,
    obj=None,
    reason: str = "",
    request=None,
    detail=str,
):
    """A service's refusal of its act's state, audited here once, whoever called (a page, the
    API, a command, a chat button): an exception of ``refusals`` leaving the block is written as
    ``action`` (outcome refused, ``detail(exception)`` — its message — as the detail, ``via``
    from ``acting_via``) and marked ``audited``, then raised on. Around the act's own
    transaction, so the entry is written after that rolled back.

    Blocks nest: when a service calls another (an act and its plan, a phase start and the percent
    control), the outermost block that answers for the exception writes it, once, in its words
    and after its transaction. An exception already ``audited`` is not written again; an
    automatic act (no ``actor``) writes nothing: its caller records what it did. A refused
    permission is ``rollout.permissions.refuse``'s, not this."""
    refusals = refusals if isinstance(refusals, tuple) else (refusals,)
    outside = _answered_outside.get()
    answering = _answered_outside.set(outside + refusals)
    try:
        yield
    except refusals as refusal:
        if actor is not None and not isinstance(refusal, outside) and not _audited(refusal):
            refused(
                action=action,
                actor=actor,
                environment=environment,
                obj=obj,
                reason=reason,
                detail=detail(refusal),
                request=request,
            )
            refusal.audited = True
        raise
    finally:
        _answered_outside.reset(answering)


def _audited(refusal: Exception) -> bool:
    return getattr(refusal, "audited", False)


def _client_ip(request) -> str | None:
    if request is None:
        return None
    # The same address the log-in lockout uses, so the two agree behind the proxy.
    return client_address(request)


@dataclass
class ChainReport:
    """What ``verify_chain`` found. ``broken_at`` is the entry where the chain breaks."""

    checked: int = 0
    legacy: int = 0
    first_id: int | None = None
    head_id: int | None = None
    head_hash: str = ""
    broken_at: int | None = None
    why: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(batch_size: int = 2000) -> ChainReport:
    """Walk the chain oldest first with the configured keys; stop at the first broken entry.
    The checkpoints are compared by ``audit_checkpoints.compare``."""
    report = ChainReport()
    keys = known_keys()
    expected_prev = GENESIS_HASH
    keyed_since = None
    last_id = 0
    while True:
        batch = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return report
        for entry in batch:
            if report.first_id is None:
                report.first_id = entry.pk
            if entry.prev_hash != expected_prev:
                report.broken_at = entry.pk
                report.why = (
                    "it is the oldest entry left but does not start the chain: the entries "
                    "before it were deleted"
                    if report.checked == 0
                    else "its link to the previous entry does not match"
                )
                return report
            if not entry.key_id and keyed_since is not None:
                report.broken_at = entry.pk
                report.why = (
                    f"it is unkeyed but follows keyed entry #{keyed_since}: the chain was "
                    "re-hashed without the key from here on"
                )
                return report
            try:
                sealed = compute_hash(entry, entry.prev_hash, keys)
            except UnknownKey:
                report.broken_at = entry.pk
                report.why = (
                    f"it was sealed with audit key {entry.key_id!r}, which is not configured "
                    "(set it in AUDIT_HMAC_OLD_KEYS to verify entries under a rotated-out key)"
                )
                return report
            if not hmac.compare_digest(sealed, entry.entry_hash):
                report.broken_at = entry.pk
                report.why = (
                    "its content does not match its HMAC (edited, or re-sealed with a different "
                    "key)"
                    if entry.key_id
                    else "its content does not match its hash"
                )
                return report
            if entry.key_id and keyed_since is None:
                keyed_since = entry.pk
            if not entry.key_id:
                report.legacy += 1
            expected_prev = entry.entry_hash
            report.checked += 1
            report.head_id, report.head_hash = entry.pk, entry.entry_hash
            last_id = entry.pk
