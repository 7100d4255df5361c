"""Alert rules over the minute buckets: pending → firing → resolved, with a "for" duration.

Rules are evaluated minute by minute over *log time*, not wall time: a minute is judged once its
logs are in (older than the newest log line by ``METRICS_ALERT_SETTLE_MINUTES``), so late files
do not make a rule flap, and a backlog replays in order. A rule fires once its condition has
held in ``for_minutes`` consecutive minutes. A minute below the traffic guard is "not enough
traffic to judge", a state of its own: it neither holds a rule nor resolves it. After the
emergency stop native traffic falls to nothing; the firing rule then waits, unjudged, and is
resolved (and the recovery announced) only by a judged minute back under its threshold.
Only "logs not delivering" runs on the wall clock, since it is about log time standing still.

Waiting for a minute to settle is the safe side for resolving and for "not enough traffic", not
for a breach the lines already prove: a native-5xx minute still arriving counts as a breach when
it is certain, and overwhelming evidence (opt-in) fires the critical rule without its duration
(``metrics/certainty.py``; ``judge`` below).

Each change of state is an ``AlertEvent``; a firing that opens an incident and its real recovery
are announced on Slack #incidents and PagerDuty, and a firing critical native-5xx rule may
trigger the emergency stop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.logpush import SLICE_SECONDS
from rollout.models import DesiredConfig, Environment, Service
from rollout.services import audit, controls
from rollout.team_language import for_the_record

from . import certainty
from . import figures as figures_module
from .figures import floor_minute
from .ingest import SLICES_KEPT
from .models import AlertEvent, AlertPolicy, AlertRule, AlertState, LogSource
from .notifications import announce, announce_auto_stop

log = logging.getLogger(__name__)

Kind = AlertRule.Kind
Severity = AlertRule.Severity
State = AlertState.State
MAX_CATCH_UP = timedelta(hours=3)  # minutes of log data replayed at most after a gap
VOLUME_WINDOW = timedelta(hours=1)

# The runbook's rules (docs/contracts.md, "Alert rules"): name, kind, threshold, for (minutes),
# severity.
DEFAULT_RULES = [
    ("native-5xx-warning", Kind.NATIVE_5XX, 1.5, 5, Severity.WARNING),
    ("native-5xx-critical", Kind.NATIVE_5XX, 3.0, 3, Severity.CRITICAL),
    ("native-p90", Kind.NATIVE_P90, 600, 10, Severity.WARNING),
    ("native-p90-vs-proxy", Kind.P90_VS_PROXY, 20, 5, Severity.WARNING),
    ("r2-upload-errors", Kind.UPLOAD_ERRORS, 5, 3, Severity.CRITICAL),
    ("cohort-share", Kind.COHORT_SHARE, 5, 10, Severity.WARNING),
    ("volume-drop", Kind.VOLUME_DROP, 30, 10, Severity.WARNING),
    ("logs-not-delivering", Kind.LOGS_STALE, 15, 0, Severity.WARNING),
]


def policy_for(service: Service) -> AlertPolicy:
    """The service's policy, created with the default rules the first time it is needed."""
    policy = AlertPolicy.objects.filter(service=service).first()
    if policy is not None:
        return policy
    with transaction.atomic():
        policy, created = AlertPolicy.objects.get_or_create(service=service)
        if created:
            AlertRule.objects.bulk_create(
                AlertRule(
                    policy=policy,
                    name=name,
                    kind=kind,
                    threshold=threshold,
                    for_minutes=for_minutes,
                    severity=severity,
                    position=position,
                )
                for position, (name, kind, threshold, for_minutes, severity) in enumerate(
                    DEFAULT_RULES
                )
            )
    return policy


# --- conditions ----------------------------------------------------------------------------------


@dataclass
class Reading:
    """A rule's reading of one minute: the value, whether it breaches, and the figures."""

    value: float | None
    breach: bool
    figures: dict
    judged: bool = True  # False below the traffic guard: the minute says nothing


def _pct(value):
    return None if value is None else round(value, 2)


class MinuteData:
    """The buckets of one environment around the minutes being judged, and, for overwhelming
    evidence, the native slices of the recent hour: loaded once (or, for the simulation, given
    as they would be loaded)."""

    def __init__(self, cells: dict, workers: dict, slices: dict | None = None):
        self.cells, self.workers = cells, workers
        self.slices = slices or {}  # start → (native requests, native 5xx)

    @classmethod
    def load(
        cls, environment_id: int, start: datetime, end: datetime, *, slices: bool = False
    ) -> MinuteData:
        # The volume rule looks two hours back.
        cells, workers = figures_module.load_minutes(environment_id, start - VOLUME_WINDOW * 2, end)
        kept = (
            figures_module.load_native_slices(environment_id, end - SLICES_KEPT, end)
            if slices
            else {}
        )
        return cls(cells, workers, kept)

    def minute(self, minute: datetime) -> figures_module.Figures:
        return figures_module.figures_from(
            self.cells, self.workers, minute, minute + timedelta(minutes=1)
        )

    def native_requests(self, start: datetime, end: datetime) -> list[int]:
        """The native cohort's requests of each minute in [start, end) that has any."""
        return [
            by_cohort["native"][0]
            for minute, by_cohort in self.cells.items()
            if start <= minute < end and "native" in by_cohort
        ]

    def requests_between(self, start: datetime, end: datetime) -> int:
        total = 0
        for minute, by_cohort in self.cells.items():
            if start <= minute < end:
                total += sum(
                    by_cohort.get(cohort, (0, 0, None))[0] for cohort in figures_module.COHORTS
                )
        return total


def _native_5xx_figures(figures: figures_module.Figures) -> dict:
    native = figures.native
    return {
        "native_5xx_percent": _pct(native.error_percent),
        "native_requests": native.requests,
        "native_5xx": native.errors_5xx,
        "proxy_5xx_percent": _pct(figures.proxy.error_percent),
    }


def read_minute(
    rule: AlertRule, data: MinuteData, minute: datetime, *, guard: int, plan_percent
) -> Reading:
    figures = data.minute(minute)
    native, proxy = figures.native, figures.proxy
    threshold = rule.threshold
    common = {"minute": minute.isoformat(), "threshold": threshold, "guard": guard}
    if rule.kind == Kind.NATIVE_5XX:
        value = native.error_percent
        enough = native.requests >= guard
        shown = _native_5xx_figures(figures)
    elif rule.kind == Kind.NATIVE_P90:
        value = native.p90
        enough = native.requests >= guard
        shown = {"native_p90_ms": _pct(value), "native_requests": native.requests}
    elif rule.kind == Kind.P90_VS_PROXY:
        native_p90, proxy_p90 = native.p90, proxy.p90
        value = 100 * (native_p90 / proxy_p90 - 1) if native_p90 is not None and proxy_p90 else None
        enough = native.requests >= guard and proxy.requests >= guard
        shown = {
            "native_p90_ms": _pct(native_p90),
            "proxy_p90_ms": _pct(proxy_p90),
            "native_above_proxy_percent": _pct(value),
        }
    elif rule.kind == Kind.UPLOAD_ERRORS:
        value = float(figures.upload_errors)
        enough = True  # a failed upload is a failure however little traffic there is
        shown = {"r2_upload_errors": figures.upload_errors}
    elif rule.kind == Kind.COHORT_SHARE:
        share = figures.native_share
        value = (
            abs(share - plan_percent) if share is not None and plan_percent is not None else None
        )
        enough = figures.requests >= guard
        shown = {
            "native_share_percent": _pct(share),
            "plan_percent": plan_percent,
            "requests": figures.requests,
        }
    elif rule.kind == Kind.VOLUME_DROP:
        end = minute + timedelta(minutes=1)
        last = data.requests_between(end - VOLUME_WINDOW, end)
        before = data.requests_between(end - 2 * VOLUME_WINDOW, end - VOLUME_WINDOW)
        value = 100 * (1 - last / before) if before else None
        enough = before >= guard * 60
        shown = {
            "requests_last_hour": last,
            "requests_hour_before": before,
            "drop_percent": _pct(value),
        }
    else:
        raise ValueError(f"rule kind {rule.kind} is not judged per minute")
    breach = enough and value is not None and value > threshold
    if not enough:
        common["below_guard"] = True
    return Reading(value, breach, {**common, **shown}, judged=enough)


# --- state machine -------------------------------------------------------------------------------


@dataclass
class Step:
    old: str
    new: str
    minute: datetime
    figures: dict
    announce: bool = False  # a firing that opens an incident, or its real recovery


@dataclass
class Position:
    """Where an alert stands between two minutes."""

    state: str
    since: datetime | None
    awaiting_recovery: bool


def advance(rule: AlertRule, at: Position, minute: datetime, reading: Reading):
    """One minute's effect on an alert: (position, step or None)."""
    state, since, awaiting = at.state, at.since, at.awaiting_recovery

    def step(new: str, **position) -> tuple[Position, Step]:
        moved = Position(
            **{"state": new, "since": since, "awaiting_recovery": awaiting, **position}
        )
        announce = (new == State.FIRING and not awaiting) or new == State.RESOLVED
        return moved, Step(state, new, minute, reading.figures, announce)

    if not reading.judged:
        if state == State.NOT_ENOUGH_TRAFFIC:
            return at, None
        # A pending run is broken; a firing alert stays open, awaiting its recovery.
        return step(State.NOT_ENOUGH_TRAFFIC, since=since if awaiting else None)
    needed = timedelta(minutes=max(rule.for_minutes, 1))
    if reading.breach:
        if state == State.FIRING:
            return at, None
        if awaiting:  # traffic is back and the condition still holds: firing as it was
            return step(State.FIRING)
        if state == State.PENDING:
            if minute + timedelta(minutes=1) - since >= needed:
                return step(State.FIRING, awaiting_recovery=True)
            return at, None
        if needed <= timedelta(minutes=1):
            return step(State.FIRING, since=minute, awaiting_recovery=True)
        return step(State.PENDING, since=minute)
    if awaiting:
        return step(State.RESOLVED, since=None, awaiting_recovery=False)
    if state in (State.PENDING, State.NOT_ENOUGH_TRAFFIC):
        return step(State.INACTIVE, since=None)
    return at, None


# --- judging before a minute settles ------------------------------------------------------------


@dataclass(frozen=True)
class Early:
    """What a policy allows a rule to judge before its minutes settle (``metrics/certainty.py``)."""

    margin: float  # a minute's most requests: the busiest recent settled minute times this
    evidence: bool = False  # overwhelming evidence fires the critical rule at once
    multiple: float = 3.0
    min_requests: int = 200

    @classmethod
    def of(cls, policy: AlertPolicy) -> Early:
        return cls(
            margin=settings.METRICS_PARTIAL_VOLUME_MARGIN,
            evidence=policy.overwhelming_evidence,
            multiple=policy.overwhelming_multiple,
            min_requests=policy.overwhelming_min_requests,
        )


def read_unsettled(
    rule: AlertRule, data: MinuteData, minute: datetime, *, guard: int, ceiling: int | None
) -> Reading:
    """A native-5xx minute whose files may still be coming in: a breach only when certain."""
    figures = data.minute(minute)
    native = figures.native
    lowest = certainty.certain_percent(native.errors_5xx, native.requests, ceiling)
    breach = native.requests >= guard and lowest is not None and lowest > rule.threshold
    shown = {
        "minute": minute.isoformat(),
        "threshold": rule.threshold,
        "guard": guard,
        **_native_5xx_figures(figures),
        "settled": False,
        "certain_5xx_percent": _pct(lowest),
        "most_requests": max(native.requests, ceiling or 0),
    }
    return Reading(native.error_percent, breach, shown)


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class Judgement:
    """What one evaluation makes of one alert: where it ends, the steps on the way there, the
    newest settled minute judged, and the reading it shows."""

    at: Position
    steps: list[Step]
    last_minute: datetime | None
    reading: Reading | None


def walk(rule: AlertRule, at: Position, last_minute, readings) -> Judgement:
    """Settled readings, oldest first, from where the alert stands (minutes judged before are
    skipped)."""
    steps, shown = [], None
    for minute, reading in readings:
        if last_minute is not None and minute <= last_minute:
            continue
        at, step = advance(rule, at, minute, reading)
        if step:
            steps.append(step)
        last_minute, shown = minute, reading
    return Judgement(at, steps, last_minute, shown)


def judge(
    rule: AlertRule,
    at: Position,
    last_minute: datetime | None,
    data: MinuteData,
    *,
    horizon: datetime,
    newest: datetime,
    guard: int,
    plan_percent,
    early: Early,
) -> Judgement:
    """One rule over the minutes not judged yet: settled minutes (before ``horizon``) as they
    are; for the native 5xx rate, the minutes after them up to ``newest`` (the minute of the
    newest log line) only where they already prove a breach, and, when the policy allows it,
    overwhelming evidence. No database access: the simulation calls it as the task does."""
    first = _first_minute(last_minute, rule, horizon)
    judgement = walk(
        rule,
        at,
        last_minute,
        (
            (minute, read_minute(rule, data, minute, guard=guard, plan_percent=plan_percent))
            for minute in _minutes(first, horizon)
        ),
    )
    if rule.kind != Kind.NATIVE_5XX:
        return judgement
    at, steps = judgement.at, judgement.steps
    # A minute not settled counts only as a certain breach, and the first minute that is not
    # one ends the walk: resolving and "not enough traffic" wait for the minute to settle. The
    # settled judgement of the same minutes comes later and moves nothing a certain breach
    # decided, unless late files prove otherwise.
    ceiling = certainty.most_requests(
        data.native_requests(horizon - timedelta(minutes=certainty.RECENT_MINUTES), horizon),
        early.margin,
    )
    for minute in _minutes(max(first, horizon), newest + timedelta(minutes=1)):
        reading = read_unsettled(rule, data, minute, guard=guard, ceiling=ceiling)
        if not reading.breach:
            break
        at, step = advance(rule, at, minute, reading)
        if step:
            steps.append(step)
        judgement.reading = reading
    judgement.at = at
    if early.evidence and rule.may_stop and at.state != State.FIRING:
        _fire_on_evidence(rule, judgement, data, newest, early)
    return judgement


def _fire_on_evidence(rule, judgement: Judgement, data: MinuteData, newest, early: Early):
    """Overwhelming evidence in the native slices from any slice's start within the rule's
    "for" minutes up to the newest slice with lines: firing now."""
    end = newest + timedelta(minutes=1)
    last = max((start for start in data.slices if start < end), default=None)
    if last is None:
        return
    earliest = last + timedelta(seconds=SLICE_SECONDS) - timedelta(minutes=max(rule.for_minutes, 1))
    counts = [
        (start, *data.slices[start]) for start in sorted(data.slices) if earliest <= start <= last
    ]
    found = certainty.overwhelming(
        counts,
        threshold=rule.threshold,
        multiple=early.multiple,
        min_requests=early.min_requests,
    )
    if found is None:
        return
    figures = data.minute(newest)
    shown = {
        "minute": newest.isoformat(),
        "threshold": rule.threshold,
        **_native_5xx_figures(figures),
        **found.figures(),
    }
    at = judgement.at
    since = at.since if at.state == State.PENDING and at.since else found.first
    judgement.steps.append(
        Step(at.state, State.FIRING, newest, shown, announce=not at.awaiting_recovery)
    )
    judgement.at = Position(State.FIRING, since, True)
    judgement.reading = Reading(figures.native.error_percent, True, shown)
    # Minutes before the evidence, and the one it starts in, preceded the incident (wholly or
    # in part): a firing alert no longer judges them (one of them, settled under the threshold,
    # would otherwise resolve it).
    skipped = floor_minute(found.first) - timedelta(minutes=0 if found.first.second else 1)
    judgement.last_minute = max(judgement.last_minute or skipped, skipped)


def evaluate_environment(environment_id: int, *, now: datetime | None = None) -> list[AlertEvent]:
    """Judge every enabled rule of the environment's service on the minutes not judged yet."""
    now = now or timezone.now()
    environment = Environment.objects.select_related("service").filter(pk=environment_id).first()
    source = LogSource.objects.filter(environment_id=environment_id, enabled=True).first()
    if environment is None or source is None:
        return []
    policy = policy_for(environment.service)
    rules = list(policy.rules.filter(enabled=True))
    desired = DesiredConfig.objects.filter(environment=environment).first()
    plan_percent = (0 if desired.emergency_proxy else desired.canary_percent) if desired else None
    newest = horizon = None
    if source.newest_log_at is not None:
        newest = floor_minute(source.newest_log_at)
        horizon = newest - timedelta(minutes=settings.METRICS_ALERT_SETTLE_MINUTES)
    states = {
        state.rule_id: state
        for state in AlertState.objects.filter(environment=environment, rule__in=rules)
    }
    for rule in rules:
        if rule.pk not in states:
            states[rule.pk], _ = AlertState.objects.get_or_create(
                rule=rule, environment=environment
            )
    data = None
    early = Early.of(policy)
    if horizon is not None:
        earliest = min(
            (_first_minute(states[rule.pk].last_minute, rule, horizon) for rule in rules),
            default=horizon,
        )
        data = MinuteData.load(
            environment_id, earliest, newest + timedelta(minutes=1), slices=early.evidence
        )
    events = []
    for rule in rules:
        alert = states[rule.pk]
        at = Position(alert.state, alert.since, alert.awaiting_recovery)
        if rule.kind == Kind.LOGS_STALE:
            judgement = walk(rule, at, alert.last_minute, _staleness(rule, source, now))
        elif data is None:
            continue
        else:
            judgement = judge(
                rule,
                at,
                alert.last_minute,
                data,
                horizon=horizon,
                newest=newest,
                guard=policy.min_requests_per_minute,
                plan_percent=plan_percent,
                early=early,
            )
        if judgement.reading is not None or judgement.steps:
            events += _apply(alert, rule, policy, environment, judgement, now)
    return events


def _first_minute(last_minute: datetime | None, rule: AlertRule, horizon: datetime) -> datetime:
    floor = horizon - MAX_CATCH_UP
    if last_minute is not None:
        return max(last_minute + timedelta(minutes=1), floor)
    # A new alert looks back just far enough to be able to fire at once.
    return max(horizon - timedelta(minutes=rule.for_minutes + 1), floor)


def _minutes(start: datetime, end: datetime):
    minute = start
    while minute < end:
        yield minute
        minute += timedelta(minutes=1)


def _staleness(rule: AlertRule, source: LogSource, now: datetime):
    if source.newest_log_at is None:
        return []  # never delivered: nothing has stopped
    age = (now - source.newest_log_at).total_seconds() / 60
    figures = {
        "minute": floor_minute(now).isoformat(),
        "threshold": rule.threshold,
        "minutes_since_newest_log": round(age, 1),
        "newest_log_at": source.newest_log_at.isoformat(),
    }
    return [(floor_minute(now), Reading(age, age > rule.threshold, figures))]


def _apply(alert, rule, policy, environment, judgement: Judgement, now) -> list[AlertEvent]:
    at, reading = judgement.at, judgement.reading
    with transaction.atomic():
        # Compare-and-set on the version: a concurrent evaluation that got here first wins,
        # and this one's events are not written.
        updated = AlertState.objects.filter(pk=alert.pk, version=alert.version).update(
            state=at.state,
            since=at.since,
            awaiting_recovery=at.awaiting_recovery,
            last_minute=judgement.last_minute,
            value=reading.value if reading else alert.value,
            figures=reading.figures if reading else alert.figures,
            changed_at=now if judgement.steps else alert.changed_at,
            version=F("version") + 1,
        )
        if not updated:
            return []
        events = []
        for step in judgement.steps:
            event = AlertEvent.objects.create(
                alert=alert,
                environment=environment,
                old_state=step.old,
                new_state=step.new,
                minute=step.minute,
                figures=step.figures,
                created_at=shown_at(step.minute, now),
            )
            events.append(event)
            if not step.announce:
                continue
            announce(event, rule=rule, environment=environment)
            if (
                event.new_state == State.FIRING
                and rule.may_stop
                and policy.auto_emergency_stop
                and now - event.minute
                <= timedelta(minutes=settings.METRICS_AUTO_STOP_MAX_AGE_MINUTES)
            ):
                _auto_emergency_stop(event, rule=rule, environment=environment)
    return events


def shown_at(minute: datetime, now: datetime) -> datetime:
    """An alert event's time on the history: when its minute was complete in log time (its end
    and the settling), or the look itself if that is sooner (a breach proven before the minute
    settled, logs not delivering). A catch-up after the worker was stopped, or a backlog, judges
    many minutes in one look: its changes keep their order and their own times, as if the worker
    had judged each minute when it came, instead of all standing at the moment the look ran."""
    settled = minute + timedelta(minutes=1 + settings.METRICS_ALERT_SETTLE_MINUTES)
    return min(now, settled)


def grounds(figures: dict) -> str:
    """What a firing native-5xx alert rests on, in words: the audit entry's reason and the
    announcements say the same."""
    if figures.get("overwhelming_evidence"):
        return (
            f"fired on overwhelming evidence: the native 5xx rate is at least "
            f"{figures['evidence_lower_bound_percent']}% "
            f"({figures['evidence_confidence_percent']}% confidence; "
            f"{figures['evidence_5xx']} 5xx of {figures['evidence_requests']} native requests "
            f"since {figures['evidence_from'][11:19]} UTC), above "
            f"{figures['evidence_needed_percent']}%, without waiting out the rule's duration"
        )
    said = (
        f"native 5xx {figures.get('native_5xx_percent')}% of {figures.get('native_requests')} "
        f"requests in the minute from {figures.get('minute')}"
    )
    if figures.get("settled") is False:
        said += (
            f" (logs of that minute still arriving: at least {figures.get('certain_5xx_percent')}%"
            f" even if all of its at most {figures.get('most_requests')} requests not yet in"
            " succeed)"
        )
    return said


def _auto_emergency_stop(event: AlertEvent, *, rule: AlertRule, environment: Environment):
    """The rule presses the emergency stop itself (the rollout opted in), through the same
    service as a person: audited as done by the rule, announced on Slack. Nothing happens if the
    stop is already on (or the environment has no desired config)."""
    system = f"rule:{rule.name}"
    # A record: in English whoever (or whichever request) ran the rule.
    reason = f"Automatic emergency stop: {for_the_record(rule.describe)} — {grounds(event.figures)}"
    try:
        change = controls.emergency_stop(environment=environment, reason=reason, system=system)
    except controls.ControlRefused:
        return None
    except (controls.ConfigConflict, ValueError) as exc:
        audit.record(
            action="alert.auto_emergency_stop",
            system=system,
            environment=environment,
            obj=event,
            reason=reason,
            outcome=audit.AuditEntry.Outcome.FAILED,
            detail=str(exc),
        )
        log.error("automatic emergency stop of %s failed: %s", environment, exc)
        return None
    AlertEvent.objects.filter(pk=event.pk).update(emergency_stop=change)
    event.emergency_stop = change
    announce_auto_stop(event, rule=rule, environment=environment, change=change)
    return change
