"""The production pre-flight (runbook step 3.1) and the deploy window.

Before a production phase starts: the latest preview suite of the service's current build passed
and is recent, the team was told in #deployments, the rollback runbook was reviewed, on-call is
confirmed by name, and two or more engineers are available for the next four hours. Every
attestation is a row (who, when, names, note) and an audit entry. Outside the deploy window
(Tuesday–Thursday, 10:00–14:00 UTC) the start needs an explicit override with a reason.

Times are aware datetimes and the rule is evaluated in UTC; the clock is an argument (``now``)
so that the window can be tested at any moment without patching.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.kv_value import CanarySettings
from outbox import notify
from outbox.models import Notification

from ..models import (
    AuditEntry,
    ConfigChange,
    DesiredConfig,
    Environment,
    PercentRequest,
    Phase,
    Preflight,
    PreflightAttestation,
    PreviewRun,
)
from ..notifications import announce_phase_start
from ..permissions import require
from . import audit, controls, phases

Kind = PreflightAttestation.Kind

# --- the deploy window ---------------------------------------------------------------------------

WINDOW_WEEKDAYS = (1, 2, 3)  # Tuesday, Wednesday, Thursday (Monday is 0)
WINDOW_OPENS = time(10, 0)
WINDOW_CLOSES = time(14, 0)  # exclusive: 14:00:00 is outside
WINDOW_TEXT = "Tuesday–Thursday, 10:00–14:00 UTC"


@dataclass(frozen=True)
class Window:
    open: bool
    now: datetime  # UTC
    next_opening: datetime | None  # UTC; None while open
    closes_at: datetime | None  # UTC; set while open

    @property
    def text(self) -> str:
        if self.open:
            return (
                f"Inside the deploy window ({WINDOW_TEXT}); it closes at "
                f"{self.closes_at:%H:%M} UTC."
            )
        return (
            f"Outside the deploy window ({WINDOW_TEXT}). The next window opens "
            f"{self.next_opening:%A %Y-%m-%d %H:%M} UTC. Starting now needs an override with a "
            "reason."
        )


def deploy_window(now: datetime) -> Window:
    """Whether ``now`` (an aware datetime, any zone) is inside the recommended deploy window."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("deploy_window needs an aware datetime")
    utc = now.astimezone(UTC)
    if utc.weekday() in WINDOW_WEEKDAYS and WINDOW_OPENS <= utc.time() < WINDOW_CLOSES:
        closes = datetime.combine(utc.date(), WINDOW_CLOSES, tzinfo=UTC)
        return Window(True, utc, None, closes)
    return Window(False, utc, _next_opening(utc), None)


def _next_opening(utc: datetime) -> datetime:
    for days in range(8):
        day = utc.date() + timedelta(days=days)
        opening = datetime.combine(day, WINDOW_OPENS, tzinfo=UTC)
        if day.weekday() in WINDOW_WEEKDAYS and opening > utc:
            return opening
    raise AssertionError("a window opens every week")


# --- which phase starts next ---------------------------------------------------------------------


def next_phase(environment: Environment, desired: DesiredConfig | None = None) -> Phase | None:
    """The plan's phase to start next on this environment.

    The phase named by the desired tag counts as started once the percent reached it; then the
    following phase is next. A phase the environment is below (rolled back to 0%, or the initial
    value) is next itself; a tag outside the plan means the plan's first phase.
    """
    plan = getattr(environment.service, "plan", None)
    if plan is None:
        return None
    planned = list(plan.phases.all())
    if not planned:
        return None
    desired = desired or DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        return planned[0]
    for index, phase in enumerate(planned):
        if phase.tag == desired.canary_tag:
            if desired.canary_percent < phase.percent:
                return phase
            return planned[index + 1] if index + 1 < len(planned) else None
    return planned[0]


# --- the checklist -------------------------------------------------------------------------------


@dataclass
class Item:
    key: str
    label: str
    done: bool
    detail: str
    attestation: PreflightAttestation | None = None
    run: PreviewRun | None = None
    notification: Notification | None = None


@dataclass
class Checklist:
    environment: Environment
    desired: DesiredConfig | None
    phase: Phase | None
    preflight: Preflight | None
    items: list[Item] = field(default_factory=list)
    window: Window | None = None
    blocker: str = ""  # a reason no phase can start at all (no plan, emergency active …)
    pending_start: PercentRequest | None = None

    @property
    def complete(self) -> bool:
        return not self.blocker and bool(self.items) and all(item.done for item in self.items)

    @property
    def missing(self) -> list[Item]:
        return [item for item in self.items if not item.done]

    @property
    def target(self) -> CanarySettings | None:
        if self.phase is None or self.desired is None:
            return None
        return CanarySettings(self.phase.percent, self.phase.tag, self.desired.emergency_proxy)

    @property
    def description(self) -> str:
        if self.target is None:
            return ""
        return controls.describe_transition(self.environment, self.desired.settings, self.target)

    @property
    def raising(self) -> bool:
        return self.target is not None and self.target.canary_percent > self.desired.canary_percent

    def item(self, key: str) -> Item:
        return next(item for item in self.items if item.key == key)


def open_preflight(environment: Environment, phase: Phase) -> Preflight:
    """The open pre-flight of this phase start, created on first sight."""
    existing = Preflight.objects.filter(
        environment=environment, phase=phase, started_at__isnull=True
    ).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return Preflight.objects.create(environment=environment, phase=phase)
    except IntegrityError:  # created by a parallel request meanwhile
        return Preflight.objects.get(environment=environment, phase=phase, started_at__isnull=True)


def evaluate(environment: Environment, *, now: datetime, create: bool = False) -> Checklist:
    """The checklist of the next phase start. ``create`` makes its pre-flight row if there is
    none yet (an attestation needs one; merely looking does not)."""
    desired = DesiredConfig.objects.filter(environment=environment).first()
    phase = next_phase(environment, desired)
    checklist = Checklist(environment, desired, phase, None, window=deploy_window(now))
    if not environment.is_production:
        checklist.blocker = "Only production phases need a pre-flight."
        return checklist
    if desired is None:
        checklist.blocker = "This environment has no desired config yet: connect it first."
        return checklist
    if phase is None:
        checklist.blocker = (
            "No next phase: the plan is complete, or the service has no plan."
            if getattr(environment.service, "plan", None)
            else "The service has no rollout plan (add one in the admin)."
        )
        return checklist
    pending = (
        PercentRequest.objects.filter(
            environment=environment,
            state=PercentRequest.State.PENDING,
            to_tag=phase.tag,
            to_percent=phase.percent,
        )
        .select_related("requested_by")
        .first()
    )
    if pending:
        checklist.pending_start = pending
        checklist.blocker = (
            f"The start of {phase.tag} ({phase.percent}%) was requested by "
            f"{pending.requested_by.get_username()} and waits for a second person's approval "
            "(Controls above)."
        )
        return checklist
    if desired.emergency_proxy:
        checklist.blocker = "The emergency stop is active: lift it before starting a phase."
        return checklist
    running = phases.start_refusal(environment)
    if running:
        checklist.blocker = running
        return checklist
    if create:
        preflight = open_preflight(environment, phase)
    else:
        preflight = Preflight.objects.filter(
            environment=environment, phase=phase, started_at__isnull=True
        ).first()
    checklist.preflight = preflight
    checklist.items = [
        preview_item(environment, now=now),
        *attestation_items(preflight, now=now),
    ]
    return checklist


def latest_preview_run(environment: Environment) -> PreviewRun | None:
    """The latest finished preview suite of the service's current build."""
    service = environment.service
    preview = service.environments.filter(name=Environment.PREVIEW).first()
    if preview is None:
        return None
    return (
        PreviewRun.objects.filter(
            environment=preview,
            build=service.current_build,
            state__in=PreviewRun.FINISHED_STATES,
        )
        .select_related("started_by")
        .order_by("-finished_at", "-id")
        .first()
    )


def preview_item(environment: Environment, *, now: datetime) -> Item:
    service = environment.service
    label = "Preview suite passed for the current build"
    build = service.current_build
    if not build:
        return Item(
            "preview_suite",
            label,
            False,
            f"{service.name} has no current build: set it on the preview suite form or in the "
            "admin, so the pre-flight knows what was verified.",
        )
    run = latest_preview_run(environment)
    max_age = timedelta(hours=settings.PREVIEW_SUITE_MAX_AGE_HOURS)
    if run is None:
        return Item(
            "preview_suite", label, False, f"No preview suite has finished for build {build}."
        )
    when = f"{run.finished_at:%Y-%m-%d %H:%M} UTC"
    if not run.passed:
        failing = [c.get_name_display() for c in run.checks.all() if c.state != "passed"]
        return Item(
            "preview_suite",
            label,
            False,
            f"The latest preview suite for build {build} FAILED ({when}: "
            f"{', '.join(failing) or run.error}). Fix it and run the suite again.",
            run=run,
        )
    age = now - run.finished_at
    if age > max_age:
        return Item(
            "preview_suite",
            label,
            False,
            f"The preview suite for build {build} passed {when}, more than "
            f"{settings.PREVIEW_SUITE_MAX_AGE_HOURS:g} h ago: run it again.",
            run=run,
        )
    who = run.started_by.get_username() if run.started_by else "the system"
    return Item(
        "preview_suite",
        label,
        True,
        f"Build {build} passed all checks {when} (run by {who}).",
        run=run,
    )


ATTESTATION_LABELS = {
    Kind.TEAM_NOTIFIED: "Team notified in Slack #deployments",
    Kind.RUNBOOK_REVIEWED: "Rollback runbook reviewed",
    Kind.ONCALL_CONFIRMED: "On-call (PagerDuty rotation) confirmed",
    Kind.ENGINEERS_AVAILABLE: "Two or more engineers available for the next 4 hours",
}


def attestation_items(preflight: Preflight | None, *, now: datetime) -> list[Item]:
    max_age = timedelta(hours=settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS)
    latest = {}
    attestations = preflight.attestations.select_related("given_by") if preflight else []
    for attestation in attestations:
        latest.setdefault(attestation.kind, attestation)  # newest first
    items = []
    for kind in Kind:
        attestation = latest.get(kind)
        label = ATTESTATION_LABELS[kind]
        if attestation is None:
            items.append(Item(kind, label, False, "Not yet given."))
            continue
        when = f"{attestation.given_at:%Y-%m-%d %H:%M} UTC"
        by = attestation.given_by.get_username()
        if now - attestation.given_at > max_age:
            items.append(
                Item(
                    kind,
                    label,
                    False,
                    f"Given by {by} at {when}, more than "
                    f"{settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS:g} h ago: give it again.",
                    attestation=attestation,
                )
            )
            continue
        if kind == Kind.TEAM_NOTIFIED and attestation.notification_id:
            items.append(_announcement_item(attestation, label, by, when))
            continue
        detail = f"By {by} at {when}"
        if attestation.names:
            detail += ": " + ", ".join(attestation.names)
        if attestation.note:
            detail += f" — {attestation.note}"
        items.append(Item(kind, label, True, detail + ".", attestation=attestation))
    return items


def _announcement_item(attestation, label, by, when) -> Item:
    notification = Notification.objects.filter(public_id=attestation.notification_id).first()
    state = notification.state if notification else None
    if state == Notification.State.SENT:
        return Item(
            Kind.TEAM_NOTIFIED,
            label,
            True,
            f"Announcement posted by {by} at {when}.",
            attestation=attestation,
            notification=notification,
        )
    if state == Notification.State.FAILED:
        detail = (
            f"The announcement {by} queued at {when} could not be delivered "
            f"({notification.last_status or '—'} {notification.last_answer}): post it again, or "
            "attest by hand with a note."
        )
    else:
        detail = f"The announcement {by} queued at {when} is on its way to Slack…"
    return Item(
        Kind.TEAM_NOTIFIED,
        label,
        False,
        detail,
        attestation=attestation,
        notification=notification,
    )


# --- attestations --------------------------------------------------------------------------------


def split_names(text: str) -> list[str]:
    """People named in a text field: separated by commas, semicolons or new lines, each once."""
    names, seen = [], set()
    for part in re.split(r"[,;\n]+", text or ""):
        name = part.strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name[:100])
    return names


def attest(
    *,
    preflight: Preflight,
    kind: str,
    person,
    names: list[str] = (),
    note: str = "",
    notification: Notification | None = None,
    request=None,
) -> PreflightAttestation:
    with transaction.atomic():
        attestation = PreflightAttestation.objects.create(
            preflight=preflight,
            kind=kind,
            given_by=person,
            names=list(names),
            note=note,
            notification_id=notification.public_id if notification else None,
        )
        detail = (
            f"{preflight.phase.tag} ({preflight.phase.percent}%): {attestation.get_kind_display()}"
        )
        if names:
            detail += ": " + ", ".join(names)
        if notification:
            detail += "; #deployments announcement queued"
        audit.record(
            action="preflight.attested",
            actor=person,
            environment=preflight.environment,
            obj=attestation,
            after={"kind": kind, "names": list(names), "preflight": str(preflight.public_id)},
            reason=note,
            detail=detail,
            request=request,
        )
    return attestation


def _latest_names(preflight: Preflight | None, kind: str) -> list[str]:
    attestation = preflight.attestations.filter(kind=kind).first() if preflight else None
    return attestation.names if attestation else []


def announce(*, checklist: Checklist, person, now: datetime, request=None):
    """Queue the announcement and record the attestation. None when Slack is not configured."""
    if not notify.channel_configured(Notification.Channel.SLACK_DEPLOYMENTS):
        return None
    with transaction.atomic():
        notification = announce_phase_start(
            checklist,
            person=person,
            start_at=now,
            oncall=_latest_names(checklist.preflight, Kind.ONCALL_CONFIRMED),
            engineers=_latest_names(checklist.preflight, Kind.ENGINEERS_AVAILABLE),
        )
        if notification is None:
            return None
        return attest(
            preflight=checklist.preflight,
            kind=Kind.TEAM_NOTIFIED,
            person=person,
            note="announcement posted to Slack #deployments",
            notification=notification,
            request=request,
        )


# --- starting the phase --------------------------------------------------------------------------


class StartRefused(controls.ControlRefused):
    """The pre-flight does not allow the start; the message says what is missing."""


def start_phase(
    *,
    environment: Environment,
    tag: str,
    reason: str,
    expected_version: int,
    override_reason: str,
    person,
    now: datetime,
    request=None,
    approved_by=None,
):
    """Start the plan's next phase if the pre-flight allows it (``controls.submit_percent``:
    raising waits for a second person's approval, unless ``approved_by`` names the person who
    already gave it — the first signer of a GO decision). Returns the change or the approval
    request; raises StartRefused, or ConfigConflict when the config moved on.

    A person needs ``rollout.request_change``; a GO decision's start is authorised by its two
    signatures instead (``approved_by`` names the first signer).

    A person's refused start is audited here as ``preflight.start_refused``, after its
    transaction rolled back, whoever called (the page, an API, a command). A GO decision's start
    is not: the decision records ``decision.next_phase_waiting`` instead."""
    if approved_by is None:
        require(person, "rollout.request_change", environment=environment, request=request)
    try:
        return _start_phase(
            environment=environment,
            tag=tag,
            reason=reason,
            expected_version=expected_version,
            override_reason=override_reason,
            person=person,
            now=now,
            request=request,
            approved_by=approved_by,
        )
    except (controls.ControlRefused, controls.ConfigConflict) as refused:
        if approved_by is None:
            record_start_refusal(
                environment=environment,
                person=person,
                reason=reason,
                message=start_refusal_message(refused),
                request=request,
            )
            refused.audited = True
        raise


def start_refusal_message(refused: Exception) -> str:
    """What a refused start says to the person, and to the audit trail."""
    if isinstance(refused, controls.ConfigConflict):
        return f"Not started: {refused}."
    return str(refused)


def refuse_start(*, environment, person, reason: str, message: str, request=None):
    """Refuse a start the caller already found refused (the page, before its confirmation step):
    audited like any refused start, then StartRefused is raised."""
    record_start_refusal(
        environment=environment, person=person, reason=reason, message=message, request=request
    )
    refused = StartRefused(message)
    refused.audited = True
    raise refused


def record_start_refusal(*, environment, person, reason: str, message: str, request=None):
    audit.refused(
        action="preflight.start_refused",
        actor=person,
        environment=environment,
        reason=reason,
        detail=message,
        request=request,
    )


def _start_phase(
    *,
    environment,
    tag,
    reason,
    expected_version,
    override_reason,
    person,
    now,
    request,
    approved_by,
):
    checklist = evaluate(environment, now=now)
    refusal = start_refusal(checklist, tag=tag, override_reason=override_reason)
    if refusal:
        raise StartRefused(refusal)
    with transaction.atomic():
        preflight = checklist.preflight
        claimed = Preflight.objects.filter(pk=preflight.pk, started_at__isnull=True).update(
            started_at=now,
            started_by=person,
            window_override_reason="" if checklist.window.open else override_reason,
            preview_run=checklist.item("preview_suite").run,
        )
        if not claimed:
            raise StartRefused("This phase start was just made by someone else.")
        if approved_by is not None:
            result = controls.request_change(
                environment=environment,
                settings=checklist.target,
                kind=ConfigChange.Kind.PHASE_START,
                reason=reason,
                expected_version=expected_version,
                actor=person,
                request=request,
                approved_by=approved_by,
            )
        else:
            result = controls.submit_percent(
                environment=environment,
                percent=checklist.phase.percent,
                tag=checklist.phase.tag,
                reason=reason,
                expected_version=expected_version,
                actor=person,
                request=request,
            )
        phases.record_phase_start(
            environment=environment,
            phase=checklist.phase,
            result=result,
            person=person,
            now=now,
            request=request,
        )
        link = (
            {"start_request": result}
            if isinstance(result, PercentRequest)
            else {"start_change": result}
        )
        Preflight.objects.filter(pk=preflight.pk).update(**link)
        detail = f"{checklist.description}; pre-flight complete"
        if not checklist.window.open:
            detail += f"; outside the deploy window, override: {override_reason}"
        audit.record(
            action="preflight.phase_started",
            actor=person,
            environment=environment,
            obj=preflight,
            before=checklist.desired.settings.as_dict(),
            after=checklist.target.as_dict(),
            reason=reason,
            outcome=AuditEntry.Outcome.PENDING
            if isinstance(result, PercentRequest)
            else AuditEntry.Outcome.OK,
            detail=detail,
            request=request,
        )
    return result


def start_refusal(checklist: Checklist, *, tag: str, override_reason: str) -> str:
    """Why the start cannot go ahead as asked; empty when it can."""
    if checklist.blocker:
        return checklist.blocker
    if checklist.phase.tag != tag:
        return (
            f"The next phase is {checklist.phase.tag} ({checklist.phase.percent}%), not {tag}: "
            "reload the page."
        )
    if not checklist.complete:
        missing = "; ".join(f"{item.label}: {item.detail}" for item in checklist.missing)
        return f"The pre-flight checklist is incomplete — {missing}"
    if not checklist.window.open and not override_reason.strip():
        return (
            f"{checklist.window.text} Give the reason for starting outside the window to override."
        )
    return ""
