"""Reconciling an environment's Workers KV ``config`` key to its desired config.

The database row is the truth; a task only carries the environment id. Every run re-reads the
newest desired version and writes that, never the version it was queued for, so a stale retry
cannot put an old state back (an emergency stop landing while a percent change is still
retrying wins). One worker at a time writes an environment (the KV lease on Environment); the
holder follows newer versions until none is left, then releases it.

A write that got no answer may still be applied by the API later, over a newer version: the
change records it (``unanswered_write_at``) and the drift check undoes such a late write.

The emergency stop does not wait for a dead writer. The lease lasts ``KV_WRITE_LEASE_SECONDS``
(longer than one attempt's three HTTP calls, so a live holder never loses it mid-write), and a
worker killed mid-write keeps it that long. So the holder also renews a heartbeat every
``KV_LEASE_HEARTBEAT_SECONDS`` from a thread of its own (``LeaseHeartbeat``), which goes on while
the writing thread waits for the KV API. When the newest desired config is an emergency stop
still waiting to be written and the holder has not renewed for ``SILENT_HEARTBEATS`` beats, the
stop's writer takes the lease over (compare-and-set on the silent holder's token) instead of
waiting out its expiry; everything else still waits for the lease to expire or be released.
Why a heartbeat and not "emergency writes need no lease": without the lease, a live holder
that passed its last look before the stop was recorded puts its older version after the stop's
PUT — an answered write, which nothing would undo. With the heartbeat, a live holder keeps the
lease (the stop waits for it, and it follows the newer version itself), and a takeover happens
only when the holder looks dead. If it was not dead after all (a process frozen for seconds),
or its last PUT is still in flight at the API, that PUT may land over the stop. The takeover
therefore records the silent holder's recent attempts as unanswered writes, and the
late-write guard (the observation's drift check, queued a few seconds after the stop is
written) re-applies the stop if one of them lands. A silent holder that wakes up finds its
token gone at its last look before the PUT and stops. Newest-version-wins still decides what is
written, and KV's one write per key per second still holds: a 429 is retried after its
``Retry-After``.
"""

import logging
import random
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection, transaction
from django.utils import timezone

from integrations import edge
from integrations.cloudflare_kv import KVClient, KVError
from integrations.http import shared_client
from integrations.kv_value import InvalidKVValue, merge, parse_object, read_settings

from .models import AuditEntry, ConfigChange, DesiredConfig, Environment
from .notifications import announce_change_outcome
from .queueing import try_to_queue
from .services import audit
from .signals import observation_wanted

log = logging.getLogger(__name__)
WRITER = "kv-writer"
# How many newer versions one run follows before it hands over to a fresh task.
MAX_VERSIONS_PER_RUN = 10
# While an older write of ours is unanswered, an observation this long after a newer change is
# written, and after it is in effect, looks for that write landing late.
LATE_WRITE_CHECK_DELAY_SECONDS = 5
# An emergency write takes over the lease of a holder that missed this many heartbeats in a row.
SILENT_HEARTBEATS = 3


@dataclass(frozen=True)
class Outcome:
    """What the task should do next: nothing, run again in ``retry_in`` s, or watch the edge."""

    retry_in: float | None = None
    confirm_change_id: int | None = None


def kv_client_for(environment: Environment) -> KVClient:
    return KVClient(
        base_url=settings.CLOUDFLARE_API_BASE_URL,
        token=settings.CLOUDFLARE_API_TOKEN,
        account_id=environment.cloudflare_account_id,
        namespace_id=environment.kv_namespace_id,
        client=shared_client(settings.HTTP_TIMEOUT_SECONDS),
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: about base, 2·base, 4·base … capped."""
    ceiling = min(
        settings.KV_RETRY_MAX_SECONDS, settings.KV_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    )
    return ceiling * random.uniform(0.5, 1.0)


def reconcile(environment_id: int) -> Outcome:
    environment = Environment.objects.filter(pk=environment_id).first()
    if environment is None:
        return Outcome()
    emergency = _emergency_stop_waiting(environment)
    token = environment.try_acquire_kv_lease(seconds=settings.KV_WRITE_LEASE_SECONDS)
    if token is None and emergency:
        token = _take_over_silent_lease(environment)
    if token is None:
        # Another worker is writing; it follows newer versions itself. Look again once it is
        # done, or once its lease has expired (an emergency stop: once it went silent) if it died.
        return Outcome(retry_in=_look_again_in(environment, emergency))
    try:
        with LeaseHeartbeat(environment, token), kv_client_for(environment) as kv:
            return _write_newest(environment, kv, token)
    finally:
        environment.release_kv_lease(token)


def silent_after_seconds() -> float:
    return SILENT_HEARTBEATS * settings.KV_LEASE_HEARTBEAT_SECONDS


def _emergency_stop_waiting(environment: Environment) -> bool:
    """Whether the newest desired config turns the emergency stop on and is not written yet."""
    desired = DesiredConfig.objects.filter(environment=environment).first()
    return bool(
        desired
        and desired.emergency_proxy
        and ConfigChange.objects.filter(
            environment=environment,
            version=desired.version,
            state__in=ConfigChange.PENDING_STATES,
        ).exists()
    )


def _look_again_in(environment: Environment, emergency: bool) -> float:
    lease = Environment.objects.values("kv_lease_until", "kv_lease_renewed_at").get(
        pk=environment.pk
    )
    now = timezone.now()
    remaining = (lease["kv_lease_until"] - now).total_seconds() if lease["kv_lease_until"] else 0
    if emergency and lease["kv_lease_renewed_at"]:
        silent_in = lease["kv_lease_renewed_at"] + timedelta(seconds=silent_after_seconds()) - now
        remaining = min(remaining, silent_in.total_seconds())
    return max(0.2, min(remaining, 2.0))


def _take_over_silent_lease(environment: Environment):
    """Take the lease of a holder that stopped renewing it, for an emergency stop. Its attempts
    of the last lease may have a PUT still in flight: they are recorded as unanswered writes, so
    that the late-write guard re-applies the stop should one of them land over it."""
    taken = environment.take_over_silent_kv_lease(
        seconds=settings.KV_WRITE_LEASE_SECONDS, silent_for=silent_after_seconds()
    )
    if taken is None:
        return None
    token, last_renewed_at = taken
    now = timezone.now()
    in_flight = ConfigChange.objects.filter(
        environment=environment,
        state__in=(ConfigChange.State.APPLYING, ConfigChange.State.SUPERSEDED),
        next_attempt_at__isnull=True,
        applying_at__gte=last_renewed_at - timedelta(seconds=settings.KV_WRITE_LEASE_SECONDS),
    )
    versions = sorted(in_flight.values_list("version", flat=True))
    ConfigChange.objects.filter(pk__in=in_flight.values("pk")).update(unanswered_write_at=now)
    silent = (now - last_renewed_at).total_seconds()
    audit.record(
        action="config.lease_taken_over",
        system=WRITER,
        environment=environment,
        outcome=AuditEntry.Outcome.OK,
        detail=f"the KV writer holding the lease has not renewed it for {silent:.1f}s "
        f"(heartbeat every {settings.KV_LEASE_HEARTBEAT_SECONDS:g}s): taken over for the "
        "emergency stop"
        + (
            f"; its write of version {', '.join(map(str, versions))} may still land and is "
            "watched for"
            if versions
            else ""
        ),
    )
    log.warning("took over the silent KV lease of %s for an emergency stop", environment)
    return token


class LeaseHeartbeat:
    """Renews the holder's heartbeat every ``KV_LEASE_HEARTBEAT_SECONDS`` from its own thread,
    so that it goes on while the writing thread waits up to HTTP_TIMEOUT_SECONDS for the KV API.
    It dies with the process: a killed worker goes silent at once. It stops when the lease is
    released or taken over."""

    def __init__(self, environment: Environment, token):
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(environment, token), name="kv-lease-heartbeat", daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopped.set()
        self._thread.join(timeout=settings.HTTP_TIMEOUT_SECONDS)

    def _beat(self, environment: Environment, token) -> None:
        try:
            while not self._stopped.wait(settings.KV_LEASE_HEARTBEAT_SECONDS):
                try:
                    if not environment.renew_kv_lease(token):
                        return
                except DatabaseError as exc:
                    # A missed beat can only let an emergency stop take over; try again.
                    log.warning("could not renew the KV lease of %s: %s", environment, exc)
                    connection.close()
        finally:
            connection.close()


def _write_newest(environment: Environment, kv: KVClient, token) -> Outcome:
    for _ in range(MAX_VERSIONS_PER_RUN):
        desired = DesiredConfig.objects.filter(environment=environment).first()
        if desired is None:
            return Outcome()
        change = ConfigChange.objects.filter(
            environment=environment, version=desired.version
        ).first()
        if change is None:
            return Outcome()
        if change.state == ConfigChange.State.WRITTEN:
            return Outcome(confirm_change_id=change.pk)
        if change.state not in ConfigChange.PENDING_STATES:
            return Outcome()
        if change.next_attempt_at and change.next_attempt_at > timezone.now():
            return Outcome(retry_in=(change.next_attempt_at - timezone.now()).total_seconds())
        for superseded_id in ConfigChange.supersede_older(environment, desired.version):
            audit.record(
                action="config.superseded",
                system=WRITER,
                environment=environment,
                obj=ConfigChange.objects.get(pk=superseded_id),
                detail=f"a newer version ({desired.version}) replaced it before it took effect",
            )
        if not change.start_attempt():
            continue
        try:
            written = _write_once(environment, kv, change, token)
        except KVError as exc:
            return _after_failure(environment, change, exc)
        if written is None:
            # Lease lost: another worker owns the environment now and finishes the job.
            return Outcome()
        if not written:
            continue  # a newer version arrived before the write; go round for it
        if DesiredConfig.objects.filter(environment=environment, version=desired.version).exists():
            return Outcome(confirm_change_id=change.pk)
    return Outcome(retry_in=0)


def _write_once(environment: Environment, kv: KVClient, change: ConfigChange, token) -> bool | None:
    """Read, merge, write, read back. True when written, False when a newer version turned up
    first, None when the lease was lost. Raises KVError for the API's failures."""
    target = change.settings
    raw_before = kv.get_value()
    value_before = raw_before.decode("utf-8", "replace") if raw_before is not None else ""
    note = ""
    if read_settings(raw_before) == target:
        # Already there: a redelivered task, or a write whose answer was lost on the way back.
        note = "KV already held this config; nothing written"
    else:
        try:
            parse_object(raw_before)
            new_value = merge(raw_before, target, timezone.now())
        except InvalidKVValue as exc:
            note = f"replaced a stored value that could not be merged ({exc}); old value kept here"
            new_value = merge(None, target, timezone.now())
        # Last look before the write that moves traffic.
        if not environment.holds_kv_lease(token, margin=settings.HTTP_TIMEOUT_SECONDS):
            return None
        if not DesiredConfig.objects.filter(
            environment=environment, version=change.version
        ).exists():
            return False
        kv.put_value(new_value)
    raw_after = kv.get_value()
    if read_settings(raw_after) != target:
        shown = raw_after.decode("utf-8", "replace")[:200] if raw_after is not None else "nothing"
        raise KVError(f"read-back does not match what was written (read {shown})", transient=True)
    if change.mark_written(value_before=value_before, value_written=raw_after.decode("utf-8")):
        audit.record(
            action="config.written",
            system=WRITER,
            environment=environment,
            obj=change,
            before=_settings_or_raw(raw_before),
            after=target.as_dict(),
            detail=f"version {change.version}, attempt {change.attempts}"
            + (f"; {note}" if note else ""),
        )
        _watch_for_late_writes(change)
    return True


def _settings_or_raw(raw: bytes | None):
    if raw is None:
        return None
    settings_ = read_settings(raw)
    return settings_.as_dict() if settings_ else {"raw": raw.decode("utf-8", "replace")[:500]}


def _after_failure(environment: Environment, change: ConfigChange, exc: KVError) -> Outcome:
    error = f"attempt {change.attempts}: {exc.message}"
    if exc.transient and change.attempts < settings.KV_WRITE_MAX_ATTEMPTS:
        delay = exc.retry_after if exc.retry_after is not None else backoff_seconds(change.attempts)
        delay = max(delay, 0.1)
        change.schedule_retry(error, delay, unanswered=exc.may_have_landed)
        log.info("KV write for %s will retry in %.1fs: %s", environment, delay, exc.message)
        return Outcome(retry_in=delay)
    final = error if not exc.transient else f"gave up after {change.attempts} attempts; {error}"
    if change.mark_failed(final, unanswered=exc.may_have_landed):
        audit.record(
            action="config.failed",
            system=WRITER,
            environment=environment,
            obj=change,
            after=change.after,
            outcome=AuditEntry.Outcome.FAILED,
            detail=final,
        )
        announce_change_outcome(change)
    return Outcome()


def confirm(change_id: int) -> Outcome:
    """Probe the edge until it reports the written config; record the time to effect."""
    change = ConfigChange.objects.select_related("environment__service").filter(pk=change_id)
    change = change.first()
    if change is None or change.state != ConfigChange.State.WRITTEN:
        return Outcome()
    environment = change.environment
    target = change.settings
    report = edge.read_qa(environment, max_wait=0)
    now = timezone.now()
    if report.error == edge.BUDGET_SPENT:
        # Nothing was sent: our other requests used this window's turns. Still watching.
        ConfigChange.objects.filter(pk=change.pk).update(last_edge_probe_at=now)
        interval = settings.EDGE_POLL_INTERVAL_SECONDS
        return Outcome(retry_in=interval, confirm_change_id=change.pk)
    Environment.objects.filter(pk=environment.pk).update(
        last_edge_report=report.summary(), last_edge_read_at=now
    )
    ConfigChange.objects.filter(pk=change.pk).update(last_edge_probe_at=now)
    if report.reports(
        percent=target.canary_percent, tag=target.canary_tag, emergency=target.emergency_proxy
    ):
        if change.mark_in_effect():
            audit.record(
                action="config.in_effect",
                system=WRITER,
                environment=environment,
                obj=change,
                after=target.as_dict(),
                detail=f"version {change.version}; edge reported it "
                f"{change.time_to_effect.total_seconds():.1f}s after the request",
            )
            announce_change_outcome(change)
            _watch_for_late_writes(change)
            if change.lowers_native_share:
                transaction.on_commit(partial(_queue_stickiness_probe, change.pk))
        return Outcome()
    waited = (now - change.written_at).total_seconds()
    allowance = settings.PROPAGATION_ALLOWANCE_SECONDS
    if waited > allowance and not change.edge_overdue:
        ConfigChange.objects.filter(pk=change.pk).update(
            edge_overdue=True,
            last_error=f"edge has not reported it {waited:.0f}s after the write "
            f"(allowance {allowance:.0f}s); last seen: {report.error or report.canary}",
        )
        audit.record(
            action="config.edge_overdue",
            system=WRITER,
            environment=environment,
            obj=change,
            outcome=AuditEntry.Outcome.FAILED,
            detail=f"not reported by the edge within {allowance:.0f}s",
        )
    if waited > 30 * allowance:
        return Outcome()  # drift detection takes it from here
    interval = settings.EDGE_POLL_INTERVAL_SECONDS * (5 if change.edge_overdue else 1)
    if report.retry_after:
        interval = max(interval, report.retry_after)
    return Outcome(retry_in=interval, confirm_change_id=change.pk)


def unanswered_older_writes(change: ConfigChange, now=None):
    """Older changes of the environment with a write that got no answer and may still land."""
    since = (now or timezone.now()) - timedelta(seconds=settings.LATE_WRITE_HORIZON_SECONDS)
    return ConfigChange.objects.filter(
        environment_id=change.environment_id,
        version__lt=change.version,
        unanswered_write_at__gte=since,
    )


def _watch_for_late_writes(change: ConfigChange) -> None:
    """When an older write of ours got no answer, it may land over this change: ask for an
    observation of the environment a few seconds after this change is written and again once it
    is in effect, not only at the next beat (monitoring/drift.py re-applies the desired config
    then)."""
    if unanswered_older_writes(change).exists():
        transaction.on_commit(
            partial(
                observation_wanted.send,
                sender=ConfigChange,
                environment_id=change.environment_id,
                delay=LATE_WRITE_CHECK_DELAY_SECONDS,
            )
        )


def _queue_stickiness_probe(change_id: int) -> None:
    """A broker outage is logged, not raised: the change is in effect either way."""
    from .tasks import probe_stickiness

    try_to_queue(probe_stickiness, change_id, what=f"the stickiness probe of change {change_id}")


def due_for_sweep(now=None) -> tuple[list[int], list[int]]:
    """Environments whose newest change waits for a write, and written changes nobody watches.

    Found by state, not by queue, so a message lost with the broker or a worker is replaced.
    """
    now = now or timezone.now()
    pending = ConfigChange.objects.filter(state__in=ConfigChange.PENDING_STATES).exclude(
        next_attempt_at__gt=now
    )
    environment_ids = sorted(set(pending.values_list("environment_id", flat=True)))
    given_up_before = now - timedelta(seconds=30 * settings.PROPAGATION_ALLOWANCE_SECONDS)
    unwatched = ConfigChange.objects.filter(
        state=ConfigChange.State.WRITTEN, written_at__gt=given_up_before
    ).exclude(last_edge_probe_at__gt=quiet_since(now))
    return environment_ids, list(unwatched.values_list("pk", flat=True))


def quiet_since(now):
    """A change whose edge probes stopped before this has no live task watching it: a watcher
    polls at least every 5 poll intervals; three missed polls mean it is gone."""
    return now - timedelta(seconds=15 * settings.EDGE_POLL_INTERVAL_SECONDS)
