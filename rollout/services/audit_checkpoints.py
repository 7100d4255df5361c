"""Checkpoints of the audit chain's head, kept outside the database.

A keyed chain cannot be re-sealed without the key, but deleting its newest entries, or all of
them, leaves a chain that still verifies. So the head (newest entry id, its hash, key id and
time) is recorded where the database's users cannot rewrite it: an append-only local file
(``AUDIT_CHECKPOINT_FILE``, one JSON line per checkpoint) and/or an S3/R2 bucket
(``AUDIT_CHECKPOINT_BUCKET``, one object per checkpoint named after the entry id, created with a
conditional PUT so that it is never overwritten). ``verify_audit`` compares the table with the
latest checkpoint of each target.

A checkpoint runs on a schedule and after every emergency stop and every decision taking
effect. Checkpointing an unchanged head writes nothing; a failure is recorded in the audit
trail (``audit.checkpoint_failed``) and so shown on the audit page.
"""

import fcntl
import json
import logging
import os
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from integrations import r2

from ..models import AuditEntry
from ..queueing import try_to_queue
from . import audit

log = logging.getLogger(__name__)

FAILED_ACTION = "audit.checkpoint_failed"
# Behind the emergency stop's KV write (0) and level with routine work: a checkpoint never
# delays a stop.
PRIORITY = 5


class CheckpointUnreadable(Exception):
    """A checkpoint target could not be read, so the chain could not be checked against it."""


@dataclass(frozen=True)
class Checkpoint:
    entry_id: int
    entry_hash: str
    key_id: str
    entry_created_at: str
    checkpointed_at: str
    where: str = ""

    def as_json(self) -> str:
        document = {
            "entry_id": self.entry_id,
            "entry_hash": self.entry_hash,
            "key_id": self.key_id,
            "entry_created_at": self.entry_created_at,
            "checkpointed_at": self.checkpointed_at,
        }
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> "Checkpoint":
        document = json.loads(text)
        return cls(
            entry_id=int(document["entry_id"]),
            entry_hash=str(document["entry_hash"]),
            key_id=str(document.get("key_id", "")),
            entry_created_at=str(document.get("entry_created_at", "")),
            checkpointed_at=str(document.get("checkpointed_at", "")),
            where=where,
        )


def targets_configured() -> bool:
    return bool(settings.AUDIT_CHECKPOINT_FILE or settings.AUDIT_CHECKPOINT_BUCKET)


def current_head() -> Checkpoint | None:
    entry = AuditEntry.objects.order_by("-id").first()
    if entry is None:
        return None
    return Checkpoint(
        entry_id=entry.pk,
        entry_hash=entry.entry_hash,
        key_id=entry.key_id,
        entry_created_at=entry.created_at.isoformat(),
        checkpointed_at=timezone.now().isoformat(),
    )


# --- writing --------------------------------------------------------------------------------


def enqueue_checkpoint() -> None:
    """Queue a checkpoint (called on commit). A broker outage is logged only: the scheduled
    checkpoint follows within one interval."""
    from ..tasks import checkpoint_audit

    try_to_queue(checkpoint_audit, what="an audit checkpoint", priority=PRIORITY)


def write_checkpoint() -> dict[str, str]:
    """Checkpoint the current head to every configured target: {target: what happened}.
    Safe to run twice and at once: an unchanged head writes nothing new."""
    head = current_head()
    if head is None or not targets_configured():
        return {}
    results, failures = {}, []
    writers = []
    if settings.AUDIT_CHECKPOINT_FILE:
        writers.append(("file", _write_to_file))
    if settings.AUDIT_CHECKPOINT_BUCKET:
        writers.append(("bucket", _write_to_bucket))
    for target, writer in writers:
        try:
            results[target] = writer(head)
        except Exception as exc:  # any I/O, network or conflict: recorded below
            results[target] = f"failed: {exc}"
            failures.append(f"{target}: {exc}")
    if failures:
        _record_failure(head, "; ".join(failures))
    return results


def _record_failure(head: Checkpoint, detail: str) -> None:
    # Once per head: a target that stays down does not add an entry (and a new head) each run.
    latest = AuditEntry.objects.order_by("-id").values("action", "detail").first()
    detail = f"checkpoint of entry #{head.entry_id} not written: {detail}"
    if latest and latest["action"] == FAILED_ACTION:
        return
    log.error("%s", detail)
    audit.record(
        action=FAILED_ACTION,
        system="audit-checkpoint",
        outcome=AuditEntry.Outcome.FAILED,
        detail=detail,
    )


def _write_to_file(head: Checkpoint) -> str:
    path = settings.AUDIT_CHECKPOINT_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # The lock makes "read the last line, append if different" one step across processes.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        last = _last_line(path)
        if last and _same_head(Checkpoint.from_json(last, path), head):
            return "unchanged"
        os.write(descriptor, (head.as_json() + "\n").encode())
        os.fsync(descriptor)
        return "written"
    finally:
        os.close(descriptor)


def _last_line(path) -> str:
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        file.seek(max(0, file.tell() - 4096))
        lines = file.read().decode(errors="replace").splitlines()
    return lines[-1] if lines else ""


def _same_head(one: Checkpoint, other: Checkpoint) -> bool:
    return (one.entry_id, one.entry_hash) == (other.entry_id, other.entry_hash)


def _bucket_client():
    return r2.client(
        endpoint_url=settings.AUDIT_CHECKPOINT_ENDPOINT_URL or settings.R2_ENDPOINT_URL,
        access_key_id=settings.R2_ACCESS_KEY_ID,
        secret_access_key=settings.R2_SECRET_ACCESS_KEY,
        timeout=settings.HTTP_TIMEOUT_SECONDS,
    )


def object_key(entry_id: int) -> str:
    # Zero-padded so that the names sort as the ids do.
    return f"{settings.AUDIT_CHECKPOINT_PREFIX}{entry_id:012d}.json"


def _write_to_bucket(head: Checkpoint) -> str:
    s3, bucket, key = _bucket_client(), settings.AUDIT_CHECKPOINT_BUCKET, object_key(head.entry_id)
    if r2.put_object_once(s3, bucket, key, head.as_json().encode()):
        return "written"
    stored = Checkpoint.from_json(r2.get_object(s3, bucket, key), key)
    if stored.entry_hash != head.entry_hash:
        raise ValueError(
            f"{key} records hash {stored.entry_hash[:16]}… for entry #{head.entry_id}, the "
            f"database now holds {head.entry_hash[:16]}…: the chain was rewritten"
        )
    return "unchanged"


# --- reading and comparing ------------------------------------------------------------------


def latest_checkpoints() -> list[Checkpoint]:
    """The checkpoint with the highest entry id in each configured target."""
    found = []
    if settings.AUDIT_CHECKPOINT_FILE:
        found += _latest_in_file(settings.AUDIT_CHECKPOINT_FILE)
    if settings.AUDIT_CHECKPOINT_BUCKET:
        found += _latest_in_bucket()
    return found


def _latest_in_file(path) -> list[Checkpoint]:
    try:
        with open(path) as file:
            lines = [line for line in file if line.strip()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointUnreadable(f"{path}: {exc}") from exc
    checkpoints = []
    for number, line in enumerate(lines, start=1):
        try:
            checkpoints.append(Checkpoint.from_json(line, f"{path}:{number}"))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointUnreadable(f"{path} line {number} is not a checkpoint") from exc
    return [max(checkpoints, key=lambda item: item.entry_id)] if checkpoints else []


def _latest_in_bucket() -> list[Checkpoint]:
    bucket, prefix = settings.AUDIT_CHECKPOINT_BUCKET, settings.AUDIT_CHECKPOINT_PREFIX
    try:
        s3 = _bucket_client()
        keys = [item.key for item in r2.list_objects(s3, bucket, prefix)]
        if not keys:
            return []
        key = max(keys, key=_entry_id_in_key)
        return [Checkpoint.from_json(r2.get_object(s3, bucket, key), f"{bucket}/{key}")]
    except r2.R2Error as exc:
        raise CheckpointUnreadable(str(exc)) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointUnreadable(f"{bucket}/{prefix}: not a checkpoint ({exc})") from exc


def _entry_id_in_key(key: str) -> int:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if name.isdigit() else -1


def compare(checkpoint: Checkpoint) -> str:
    """What the table lacks or changed against one checkpoint; empty if it holds it."""
    number, at = checkpoint.entry_id, checkpoint.checkpointed_at
    stored = AuditEntry.objects.filter(pk=number).values_list("entry_hash", flat=True).first()
    if stored is not None:
        if stored != checkpoint.entry_hash:
            return (
                f"entry #{number} no longer has the hash checkpointed at {at} "
                f"({checkpoint.where}): the chain was rewritten up to there"
            )
        return ""
    if not AuditEntry.objects.exists():
        return (
            f"the audit table is empty, but the checkpoint of {at} ({checkpoint.where}) recorded "
            f"entry #{number}: the table was truncated"
        )
    before = AuditEntry.objects.filter(pk__lt=number).order_by("-id").first()
    if before is None:
        return (
            f"entries up to #{number} were deleted (checkpointed at {at}, {checkpoint.where}): "
            "the oldest part of the table was truncated"
        )
    return (
        f"entries after #{before.pk} were deleted: #{before.pk + 1} to #{number} (entry "
        f"#{number} was checkpointed at {at}, {checkpoint.where})"
    )
