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
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

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
from ..templatetags.times import in_words
from . import audit, controls, phases

Kind = PreflightAttestation.Kind

# --- the deploy window ---------------------------------------------------------------------------

WINDOW_WEEKDAYS = (1, 2, 3)  # Tuesday, Wednesday, Thursday (Monday is 0)
WINDOW_OPENS = time(10, 0)
WINDOW_CLOSES = time(14, 0)  # exclusive: 14:00:00 is outside


def window_words(around: datetime) -> str:
    """The deploy window's rule in the reader's time zone, e.g. "Tuesday–Thursday, 11:00–15:00
    CET" in Berlin in the week of ``around`` (the rule is in UTC, the page never mixes zones)."""
    day = around.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    first, last = (monday + timedelta(days=d) for d in (WINDOW_WEEKDAYS[0], WINDOW_WEEKDAYS[-1]))
    opens = timezone.localtime(datetime.combine(first, WINDOW_OPENS, tzinfo=UTC))
    last_opens = timezone.localtime(datetime.combine(last, WINDOW_OPENS, tzinfo=UTC))
    closes = timezone.localtime(datetime.combine(first, WINDOW_CLOSES, tzinfo=UTC))
    return _("%(first)s–%(last)s, %(opens)s–%(closes)s") % {
        "first": dateformat.format(opens, "l"),
        "last": dateformat.format(last_opens, "l"),
        "opens": dateformat.format(opens, "H:i"),
        "closes": dateformat.format(closes, "H:i T"),
    }


@dataclass(frozen=True)
class Window:
    open: bool
    now: datetime  # UTC
    next_opening: datetime | None  # UTC; None while open
    closes_at: datetime | None  # UTC; set while open

    @property
    def text(self) -> str:
        """In the active time zone: the reader's on a page."""
        if self.open:
            return _("Inside the deploy window (%(window)s); it closes at %(closes_at)s.") % {
                "window": window_words(self.now),
                "closes_at": in_words(self.closes_at, "time"),
            }
        return _(
            "Outside the deploy window (%(window)s). The next window opens "
            "%(next_opening)s. Starting now needs an override with a reason."
        ) % {
            "window": window_words(self.next_opening),
            # The weekday in the reader's language (dateformat's "l"; strftime's %A is English).
            "next_opening": dateformat.format(
                timezone.localtime(self.next_opening), "l Y-m-d H:i T"
            ),
        }


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
        checklist.blocker = _("Only production phases need a pre-flight.")
        return checklist
    if desired is None:
        checklist.blocker = _("This environment has no desired config yet: connect it first.")
        return checklist
    if phase is None:
        checklist.blocker = (
            _("No next phase: the plan is complete, or the service has no plan.")
            if getattr(environment.service, "plan", None)
            else _("The service has no rollout plan (add one in the admin).")
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
        checklist.blocker = _(
            "The start of %(tag)s (%(percent)s%%) was requested by "
            "%(requested_by)s and waits for a second person's approval (Controls "
            "above)."
        ) % {
            "tag": phase.tag,
            "percent": phase.percent,
            "requested_by": pending.requested_by.get_username(),
        }
        return checklist
    if desired.emergency_proxy:
        checklist.blocker = _("The emergency stop is active: lift it before starting a phase.")
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
    live = environment.live_deployment if environment.worker_script_name else None
    if live is not None and live.is_split:
        checklist.items.append(version_split_item(preflight, live, now=now))
    return checklist


def latest_preview_run(environment: Environment) -> PreviewRun | None:
    """The latest finished preview suite of the build that production runs next: the Worker
    version serving production (its larger share under a split) when production's version is
    read, else the service's current build as typed."""
    service = environment.service
    preview = service.environments.filter(name=Environment.PREVIEW).first()
    if preview is None:
        return None
    if environment.worker_script_name:
        live = environment.live_deployment
        if live is None:
            return None
        main = max(live.versions, key=lambda version: version["percentage"])
        return suite_of_version(preview, main["version_id"])
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


# How many of preview's latest finished runs are searched for a version: far more than pass
# within the suite's maximum age.
RUNS_SEARCHED = 200


def suite_of_version(preview: Environment, version_id: str) -> PreviewRun | None:
    """The latest finished preview suite that verified this Worker version."""
    runs = (
        PreviewRun.objects.filter(environment=preview, state__in=PreviewRun.FINISHED_STATES)
        .select_related("started_by", "deployment")
        .order_by("-finished_at", "-id")[:RUNS_SEARCHED]
    )
    return next((run for run in runs if version_id in run.version_ids), None)


def preview_item(environment: Environment, *, now: datetime) -> Item:
    if environment.worker_script_name:
        return _live_version_item(environment, now=now)
    service = environment.service
    label = _("Preview suite passed for the current build")
    build = service.current_build
    if not build:
        return Item(
            "preview_suite",
            label,
            False,
            _(
                "%(name)s has no current build: set it on the preview suite form or in "
                "the admin, so the pre-flight knows what was verified."
            )
            % {"name": service.name},
        )
    run = latest_preview_run(environment)
    max_age = timedelta(hours=settings.PREVIEW_SUITE_MAX_AGE_HOURS)
    if run is None:
        return Item(
            "preview_suite",
            label,
            False,
            _("No preview suite has finished for build %(build)s.") % {"build": build},
        )
    when = in_words(run.finished_at)
    if not run.passed:
        failing = [c.get_name_display() for c in run.checks.all() if c.state != "passed"]
        return Item(
            "preview_suite",
            label,
            False,
            _(
                "The latest preview suite for build %(build)s FAILED (%(when)s: "
                "%(error)s). Fix it and run the suite again."
            )
            % {"build": build, "when": when, "error": ", ".join(failing) or run.error},
            run=run,
        )
    age = now - run.finished_at
    if age > max_age:
        return Item(
            "preview_suite",
            label,
            False,
            _(
                "The preview suite for build %(build)s passed %(when)s, more than "
                "%(PREVIEW_SUITE_MAX_AGE_HOURS)s h ago: run it again."
            )
            % {
                "build": build,
                "when": when,
                "PREVIEW_SUITE_MAX_AGE_HOURS": format(settings.PREVIEW_SUITE_MAX_AGE_HOURS, "g"),
            },
            run=run,
        )
    who = run.started_by.get_username() if run.started_by else _("the system")
    return Item(
        "preview_suite",
        label,
        True,
        _("Build %(build)s passed all checks %(when)s (run by %(who)s).")
        % {"build": build, "when": when, "who": who},
        run=run,
    )


def _live_version_item(environment: Environment, *, now: datetime) -> Item:
    """Every Worker version serving production passed the preview suite, recently: the versions
    are compared by id, as Cloudflare reports them for preview and production."""
    label = _("Preview suite passed for the version live on production")
    live = environment.live_deployment
    if live is None:
        why = environment.deployments_error or _("not read yet")
        return Item(
            "preview_suite",
            label,
            False,
            _("The Worker version live on production is not known (%(why)s).") % {"why": why},
        )
    preview = environment.service.environments.filter(name=Environment.PREVIEW).first()
    max_age = timedelta(hours=settings.PREVIEW_SUITE_MAX_AGE_HOURS)
    passed, first_run = [], None
    for version in sorted(live.versions, key=lambda version: -version["percentage"]):
        version_id = version["version_id"]
        run = suite_of_version(preview, version_id) if preview else None
        first_run = first_run or run
        if run is None:
            detail = _(
                "No preview suite has verified version %(version_id)s (live on production)."
            ) % {"version_id": version_id}
            return Item("preview_suite", label, False, detail, run=first_run)
        when = in_words(run.finished_at)
        if not run.passed:
            failing = [c.get_name_display() for c in run.checks.all() if c.state != "passed"]
            detail = _(
                "The latest preview suite of version %(version_id)s FAILED (%(when)s: "
                "%(error)s). Fix it and run the suite again."
            ) % {"version_id": version_id, "when": when, "error": ", ".join(failing) or run.error}
            return Item("preview_suite", label, False, detail, run=run)
        if now - run.finished_at > max_age:
            detail = _(
                "The preview suite of version %(version_id)s passed %(when)s, more "
                "than %(PREVIEW_SUITE_MAX_AGE_HOURS)s h ago: run it again."
            ) % {
                "version_id": version_id,
                "when": when,
                "PREVIEW_SUITE_MAX_AGE_HOURS": format(settings.PREVIEW_SUITE_MAX_AGE_HOURS, "g"),
            }
            return Item("preview_suite", label, False, detail, run=run)
        who = run.started_by.get_username() if run.started_by else _("the system")
        passed.append(
            _("version %(version_id)s passed all checks %(when)s (run by %(who)s)")
            % {"version_id": version_id, "when": when, "who": who}
        )
    return Item("preview_suite", label, True, "; ".join(passed).capitalize() + ".", run=first_run)


def version_split_item(preflight: Preflight | None, live, *, now: datetime) -> Item:
    """Cloudflare's gradual deployment splits production between two versions, on top of our
    cohort split: a person acknowledges it for this very deployment before a phase starts."""
    label = ATTESTATION_LABELS[Kind.VERSION_SPLIT]
    split = live.describe(full=True)
    attestation = (
        preflight.attestations.filter(kind=Kind.VERSION_SPLIT).select_related("given_by").first()
        if preflight
        else None
    )
    max_age = timedelta(hours=settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS)
    if (
        attestation is not None
        and attestation.deployment_id == live.pk
        and now - attestation.given_at <= max_age
    ):
        detail = _(
            "Cloudflare serves %(split)s: acknowledged by %(given_by)s at %(given_at)s — %(note)s."
        ) % {
            "split": split,
            "given_by": attestation.given_by.get_username(),
            "given_at": in_words(attestation.given_at),
            "note": attestation.note,
        }
        return Item(Kind.VERSION_SPLIT, label, True, detail, attestation=attestation)
    detail = _(
        "Cloudflare's gradual deployment serves %(split)s: a version-level "
        "split is in play on top of our cohort split, so the phase's figures "
        "mix two builds. Acknowledge it with a note."
    ) % {"split": split}
    return Item(Kind.VERSION_SPLIT, label, False, detail)


ATTESTATION_LABELS = {
    Kind.TEAM_NOTIFIED: gettext_lazy("Team notified in Slack #deployments"),
    Kind.RUNBOOK_REVIEWED: gettext_lazy("Rollback runbook reviewed"),
    Kind.ONCALL_CONFIRMED: gettext_lazy("On-call (PagerDuty rotation) confirmed"),
    Kind.ENGINEERS_AVAILABLE: gettext_lazy("Two or more engineers available for the next 4 hours"),
    Kind.VERSION_SPLIT: gettext_lazy("Cloudflare's version split acknowledged"),
}
# Asked of every start; the version split only while production has one (version_split_item).
CHECKLIST_KINDS = [kind for kind in Kind if kind != Kind.VERSION_SPLIT]


def attestation_items(preflight: Preflight | None, *, now: datetime) -> list[Item]:
    max_age = timedelta(hours=settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS)
    latest = {}
    attestations = preflight.attestations.select_related("given_by") if preflight else []
    for attestation in attestations:
        latest.setdefault(attestation.kind, attestation)  # newest first
    items = []
    for kind in CHECKLIST_KINDS:
        attestation = latest.get(kind)
        label = ATTESTATION_LABELS[kind]
        if attestation is None:
            items.append(Item(kind, label, False, _("Not yet given.")))
            continue
        when = in_words(attestation.given_at)
        by = attestation.given_by.get_username()
        if now - attestation.given_at > max_age:
            items.append(
                Item(
                    kind,
                    label,
                    False,
                    _(
                        "Given by %(by)s at %(when)s, more than "
                        "%(PREFLIGHT_ATTESTATION_MAX_AGE_HOURS)s h ago: give it again."
                    )
                    % {
                        "by": by,
                        "when": when,
                        "PREFLIGHT_ATTESTATION_MAX_AGE_HOURS": format(
                            settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS, "g"
                        ),
                    },
                    attestation=attestation,
                )
            )
            continue
        if kind == Kind.TEAM_NOTIFIED and attestation.notification_id:
            items.append(_announcement_item(attestation, label, by, when))
            continue
        detail = _("By %(by)s at %(when)s") % {"by": by, "when": when}
        if attestation.names:
            detail += _(": ") + ", ".join(attestation.names)
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
            _("Announcement posted by %(by)s at %(when)s.") % {"by": by, "when": when},
            attestation=attestation,
            notification=notification,
        )
    if state == Notification.State.FAILED:
        detail = _(
            "The announcement %(by)s queued at %(when)s could not be delivered "
            "(%(or)s %(last_answer)s): post it again, or attest by hand with a "
            "note."
        ) % {
            "by": by,
            "when": when,
            "or": notification.last_status or "—",
            "last_answer": notification.last_answer,
        }
    else:
        detail = _("The announcement %(by)s queued at %(when)s is on its way to Slack…") % {
            "by": by,
            "when": when,
        }
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
    deployment=None,
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
            deployment=deployment,
        )
        detail = (
            f"{preflight.phase.tag} ({preflight.phase.percent}%): {attestation.get_kind_display()}"
        )
        if names:
            detail += _(": ") + ", ".join(names)
        if notification:
            detail += _("; #deployments announcement queued")
        if deployment is not None:
            detail += f": {deployment.describe(full=True)}"
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
            note=_("announcement posted to Slack #deployments"),
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
    # A GO decision's start answers for its refusal with no entry of its own (no actor).
    with _refusals_audited(environment, person if approved_by is None else None, reason, request):
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


def start_refusal_message(refused: Exception) -> str:
    """What a refused start says to the person, and to the audit trail."""
    if isinstance(refused, controls.ConfigConflict):
        return _("Not started: %(refused)s.") % {"refused": refused}
    return str(refused)


def refuse_start(*, environment, person, reason: str, message: str, request=None):
    """Refuse a start the caller already found refused (the page, before its confirmation step):
    audited like any refused start, then StartRefused is raised."""
    with _refusals_audited(environment, person, reason, request):
        raise StartRefused(message)


def _refusals_audited(environment, person, reason: str, request):
    """``preflight.start_refused``: the start's refusal, the percent control's within it too."""
    return audit.refusals_audited(
        "preflight.start_refused",
        controls.STATE_REFUSALS,
        actor=person,
        environment=environment,
        reason=reason,
        request=request,
        detail=start_refusal_message,
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
            raise StartRefused(_("This phase start was just made by someone else."))
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
        detail = _("%(description)s; pre-flight complete") % {"description": checklist.description}
        if not checklist.window.open:
            detail += _("; outside the deploy window, override: %(override_reason)s") % {
                "override_reason": override_reason
            }
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
        return _("The next phase is %(tag)s (%(percent)s%%), not %(tag2)s: reload the page.") % {
            "tag": checklist.phase.tag,
            "percent": checklist.phase.percent,
            "tag2": tag,
        }
    if not checklist.complete:
        missing = "; ".join(f"{item.label}: {item.detail}" for item in checklist.missing)
        return _("The pre-flight checklist is incomplete — %(missing)s") % {"missing": missing}
    if not checklist.window.open and not override_reason.strip():
        return _("%(text)s Give the reason for starting outside the window to override.") % {
            "text": checklist.window.text
        }
    return ""
