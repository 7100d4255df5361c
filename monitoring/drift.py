"""Drift: the desired config, the value in Workers KV and what the edge reports, compared.

A KV value changed outside the dashboard (``wrangler kv key put`` during an incident) is shown,
audited once per distinct value, announced, and left alone until a person adopts it (it becomes
the desired config) or overwrites it (the desired config is re-applied). It is never reverted
silently. A KV value the edge has not reported within the propagation allowance is flagged.

One exception is our own doing: a write of an older version that got no answer (it timed out or
its connection closed) may be applied by the API after a newer version was written, putting the
old state back — an emergency stop undone. When KV holds exactly the settings of such an older
change within ``LATE_WRITE_HORIZON_SECONDS`` of its unanswered write, the desired config is
re-applied at once (audited and announced), not left waiting for a person.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.edge_qa import EdgeReport
from integrations.kv_value import CanarySettings, read_settings
from integrations.said import words_of
from rollout.kv_writer import unanswered_older_writes
from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from rollout.permissions import require
from rollout.services import audit
from rollout.services.controls import ConfigConflict, Plan, request_change
from rollout.team_language import for_the_record

from .drift_words import findings_words, kv_facts, kv_words, late_write_words
from .models import DriftEvent, DriftState
from .notifications import announce_external_change, announce_late_write

log = logging.getLogger(__name__)
SYSTEM = "drift-check"
LATE_WRITE_GUARD = "late-write-guard"
# How the edge worker reads a missing or unusable value: 0 %, no tag, no emergency.
WORKER_FALLBACK = CanarySettings(0, "", False)


class DriftMoved(Exception):
    """What the person decided on is no longer what KV holds (or was already decided)."""


def value_hash(raw: bytes | None) -> str:
    """Identifies one stored value; a missing key is a value of its own."""
    return hashlib.sha256(b"\x00missing" if raw is None else b"value:" + raw).hexdigest()


def describe(settings_: CanarySettings | dict | None) -> str:
    if settings_ is None:
        return "no valid config"
    if isinstance(settings_, dict):
        settings_ = CanarySettings(**settings_)
    return settings_.describe()


def record(state: DriftState, *, raw: bytes | None, kv_error: str, report: EdgeReport):
    """Compare what the observation read from KV and the edge with the desired config."""
    environment = state.environment
    now = timezone.now()
    desired = DesiredConfig.objects.filter(environment=environment).first()
    change = (
        ConfigChange.objects.filter(environment=environment, version=desired.version).first()
        if desired
        else None
    )
    fields = {
        "checked_at": now,
        "desired_version": desired.version if desired else None,
        "desired": desired.settings.as_dict() if desired else None,
    }
    findings = []  # as facts (drift_words.py); "detail" keeps them in English for the record
    late = None

    # --- KV against desired -----------------------------------------------------------------
    if kv_error:
        kv_state = DriftState.KV.UNREADABLE
        kv_settings = CanarySettings(**state.kv_settings) if state.kv_settings else None
        kv_hash = state.kv_hash
        findings.append({"kind": "kv_unreadable", "error": kv_error})
    else:
        kv_settings = read_settings(raw)
        kv_hash = value_hash(raw)
        fields.update(
            kv_raw=raw.decode("utf-8", "replace")[:4000] if raw is not None else "",
            kv_missing=raw is None,
            kv_settings=kv_settings.as_dict() if kv_settings else None,
            kv_hash=kv_hash,
        )
        if kv_hash != state.kv_hash or state.kv_seen_at is None:
            # The moment this value appeared: the write time when it is ours, else now.
            ours = bool(
                change and change.written_at and desired and kv_settings == desired.settings
            )
            fields["kv_seen_at"] = change.written_at if ours else now
        if desired is None:
            kv_state = DriftState.KV.NO_DESIRED
        elif kv_settings == desired.settings:
            kv_state = DriftState.KV.IN_SYNC
        elif change is not None and change.state in ConfigChange.PENDING_STATES:
            kv_state = DriftState.KV.WRITING
        elif change is not None and change.state == ConfigChange.State.FAILED:
            kv_state = DriftState.KV.WRITE_FAILED
            findings.append(
                {
                    "kind": "write_failed",
                    "kv": kv_facts(raw, kv_settings),
                    "version": desired.version,
                    "error": change.last_error[:200],
                }
            )
        elif late := _late_write_of_ours(change, kv_settings, now):
            # Ours, not an outsider's: re-applied below, once, by the check that claims it.
            kv_state = DriftState.KV.WRITING
            findings.append(
                {"kind": "late_write", "late": late.version, "desired": desired.version}
            )
        else:
            kv_state = DriftState.KV.EXTERNAL
            findings.append(
                {
                    "kind": "external",
                    "kv": kv_facts(raw, kv_settings),
                    "desired": desired.settings.as_dict(),
                    "version": desired.version,
                }
            )
    fields["kv_state"] = kv_state

    # --- the edge against KV ----------------------------------------------------------------
    if kv_error:
        reference = desired.settings if desired else None
    else:
        reference = kv_settings or WORKER_FALLBACK
    seen_at = fields.get("kv_seen_at", state.kv_seen_at) or now
    fields["edge"] = report.summary()
    if report.error:
        edge_state = DriftState.Edge.UNREADABLE
        fields["edge_behind_since"] = None
        findings.append(
            {"kind": "edge_unreadable", "error": report.error, "error_said": words_of(report.error)}
        )
    elif reference is None:
        edge_state = DriftState.Edge.UNKNOWN
        fields["edge_behind_since"] = None
    elif report.reports(
        percent=reference.canary_percent,
        tag=reference.canary_tag,
        emergency=reference.emergency_proxy,
    ):
        edge_state = DriftState.Edge.IN_SYNC
        fields["edge_behind_since"] = None
    else:
        waited = (now - seen_at).total_seconds()
        allowance = settings.PROPAGATION_ALLOWANCE_SECONDS
        edge_state = DriftState.Edge.LAGGING if waited > allowance else DriftState.Edge.PROPAGATING
        fields["edge_behind_since"] = state.edge_behind_since or now
        findings.append(
            {
                "kind": "edge_behind",
                "edge": report.canary,
                "kv": reference.as_dict(),
                "waited": round(waited),
                "allowance": round(allowance),
            }
        )
    fields["edge_state"] = edge_state
    fields["findings"] = findings
    fields["detail"] = for_the_record(findings_words, findings)

    with transaction.atomic():
        first_sighting = False
        reapplied = None
        if late is not None:
            # Compare-and-set, as for an external value: of two checks at once only one
            # re-applies. The hash also keeps a re-applied value from being re-applied again.
            claimed = (
                DriftState.objects.filter(pk=state.pk)
                .exclude(external_hash=kv_hash)
                .update(external_hash=kv_hash, external_since=None, resolution="")
            )
            if claimed:
                reapplied = _reapply_after_late_write(environment, desired, late, kv_hash)
            if reapplied is not None:
                fields["desired_version"] = reapplied.version
                fields["resolution"] = (
                    f"re-applied as version {reapplied.version} by the {LATE_WRITE_GUARD}"
                )
        elif kv_state == DriftState.KV.EXTERNAL:
            # Compare-and-set: only the first check to see this value audits and announces it.
            first_sighting = bool(
                DriftState.objects.filter(pk=state.pk)
                .exclude(external_hash=kv_hash)
                .update(external_hash=kv_hash, external_since=now, resolution="")
            )
        elif kv_state == DriftState.KV.IN_SYNC:
            fields.update(external_hash="", external_since=None, resolution="")
        elif kv_state == DriftState.KV.WRITE_FAILED and (
            state.kv_state != kv_state or kv_hash != state.kv_hash
        ):
            # A re-apply that failed too needs a person again.
            fields["resolution"] = ""
        DriftState.objects.filter(pk=state.pk).update(**fields)
        if (state.kv_state, state.edge_state) != (kv_state, edge_state) or reapplied:
            DriftEvent.objects.create(
                environment=environment,
                at=now,
                old_kv_state=state.kv_state,
                new_kv_state=kv_state,
                old_edge_state=state.edge_state,
                new_edge_state=edge_state,
                detail=fields["detail"][:2000],
                findings=findings,
            )
        if first_sighting:
            _report_external_change(environment, desired, raw, kv_settings, kv_hash)
    state.refresh_from_db()
    return state


def _late_write_of_ours(change, kv_settings, now) -> ConfigChange | None:
    """The older change whose unanswered write KV holds again, once the desired version was
    written after it; None when the value matches no write of ours that may still land."""
    if kv_settings is None or change is None:
        return None
    if change.state not in (ConfigChange.State.WRITTEN, ConfigChange.State.IN_EFFECT):
        return None
    older = unanswered_older_writes(change, now).order_by("-version")
    return next(
        (older_change for older_change in older if older_change.settings == kv_settings), None
    )


def _reapply_after_late_write(environment, desired, late, kv_hash) -> ConfigChange | None:
    reason = for_the_record(late_write_words, late.version, desired.version)
    try:
        reapplied = request_change(
            environment=environment,
            settings=desired.settings,
            kind=ConfigChange.Kind.REAPPLY,
            reason=reason,
            expected_version=desired.version,
            system=LATE_WRITE_GUARD,
        )
    except ConfigConflict:
        # A newer version was requested meanwhile; its write replaces the late one anyway.
        log.info("late write in %s: the desired config moved on, nothing re-applied", environment)
        return None
    announce_late_write(
        environment, late=late, desired=desired, reapplied=reapplied, kv_hash=kv_hash
    )
    return reapplied


def _report_external_change(environment, desired, raw, kv_settings, kv_hash):
    after = (
        kv_settings.as_dict()
        if kv_settings
        else {"raw": raw.decode("utf-8", "replace")[:500] if raw is not None else None}
    )
    kv = kv_facts(raw, kv_settings)
    detail = for_the_record(
        lambda: (
            f"KV holds {kv_words(kv)}, desired is {desired.settings.describe()} "
            f"(version {desired.version}); waiting for a person to adopt or overwrite it"
        )
    )
    audit.record(
        action="drift.external_change",
        system=SYSTEM,
        environment=environment,
        before=desired.settings.as_dict(),
        after=after,
        outcome=AuditEntry.Outcome.FAILED,
        detail=detail,
    )
    announce_external_change(environment, desired=desired, kv=kv, kv_hash=kv_hash)


# --- a person's decision ------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftPlan(Plan):
    """A person's decision on an external KV value, computed once like a control's plan: the
    confirmation step shows ``description`` and the act writes ``target``."""

    how: str = ""
    words: str = ""

    @property
    def description(self) -> str:
        return self.words


def _plan(*, environment, kv_hash, actor, request, adopt: bool) -> DriftPlan:
    require(actor, "rollout.request_change", environment=environment, request=request)
    state = DriftState.objects.filter(environment=environment).first()
    if state is None or not state.needs_decision or state.kv_hash != kv_hash:
        raise DriftMoved(
            "the value in KV changed or was dealt with since this page was loaded; look again"
        )
    desired = DesiredConfig.objects.get(environment=environment)
    if not adopt:
        return DriftPlan(
            environment,
            desired,
            desired.settings,
            ConfigChange.Kind.REAPPLY,
            how="overwritten",
            words=f"{environment}: overwrite KV with {desired.settings.describe()} "
            f"(version {desired.version + 1})",
        )
    if not state.kv_settings:
        raise DriftMoved("KV does not hold a valid config to adopt; overwrite it instead")
    target = CanarySettings(**state.kv_settings)
    return DriftPlan(
        environment,
        desired,
        target,
        ConfigChange.Kind.ADOPT_EXTERNAL,
        how="adopted",
        words=f"{environment}: adopt the value in KV, {target.describe()}, as the desired config "
        f"(version {desired.version + 1})",
    )


def plan_adopt(*, environment, kv_hash, actor, request=None) -> DriftPlan:
    return _plan(environment=environment, kv_hash=kv_hash, actor=actor, request=request, adopt=True)


def plan_overwrite(*, environment, kv_hash, actor, request=None) -> DriftPlan:
    return _plan(
        environment=environment, kv_hash=kv_hash, actor=actor, request=request, adopt=False
    )


def _decide(plan, *, environment, kv_hash, expected_version, reason, actor, request=None):
    decision = plan(environment=environment, kv_hash=kv_hash, actor=actor, request=request)
    state = DriftState.objects.get(environment=environment)
    with transaction.atomic():
        resolution = f"{decision.how} by {actor.get_username()}"
        if not state.settle(kv_hash=kv_hash, resolution=resolution):
            raise DriftMoved("someone else decided on this value a moment ago")
        # ConfigConflict (the desired config moved on) rolls the settlement back with it.
        return decision.write(
            reason=reason, expected_version=expected_version, actor=actor, request=request
        )


def adopt_external(**decision):
    """The value found in KV becomes the desired config (a new version; KV already holds it).

    Takes the environment, the ``kv_hash`` the person saw, the ``expected_version``, the reason,
    the actor and the request, as ``overwrite_external`` does.
    """
    return _decide(plan_adopt, **decision)


def overwrite_external(**decision):
    """The desired config is written to KV again, replacing the value found there."""
    return _decide(plan_overwrite, **decision)
