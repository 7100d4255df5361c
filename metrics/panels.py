"""What the metrics panels, the JSON endpoint and the Prometheus endpoint show."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rollout.models import DesiredConfig, Environment
from rollout.services import evidence, phases
from rollout.templatetags.times import in_words

from . import alerts, figures
from .charts import Series, Threshold, line_chart
from .models import AlertEvent, AlertRule, AlertState, LogObject, LogSource

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24)}
WINDOW_CHOICES = [("1h", "1 h"), ("6h", "6 h"), ("24h", "24 h"), ("phase", gettext_lazy("phase"))]
DEFAULT_WINDOW = "1h"
POINTS = 60
CURRENT = timedelta(minutes=5)  # "current" figures: the last five minutes of log data


def window_key(value: str | None) -> str:
    return value if value in dict(WINDOW_CHOICES) else DEFAULT_WINDOW


def window_bounds(environment: Environment, key: str, now: datetime):
    """[start, end) and a label. The "phase" window is the phase window of the evidence
    (``rollout.services.evidence.window_bounds``): from the minute the current phase took effect
    to its window's end or now, whichever the phase page and the reports count over."""
    end = figures.floor_minute(now) + timedelta(minutes=1)
    if key == "phase":
        run = phases.current_run(environment)
        if run is not None:
            start, end = evidence.window_bounds(run, now)
            label = _("phase %(run)s, build %(build)s (since %(since)s)") % {
                "run": run,
                "build": phases.build_of(run) or _("no build named"),
                "since": in_words(run.in_effect_at, "minutes"),
            }
            return start, end, label
        return end - WINDOWS["24h"], end, _("phase (none in effect yet: last 24 h)")
    return end - WINDOWS[key], end, _("last %(window)s") % {"window": dict(WINDOW_CHOICES)[key]}


def window_total(environment: Environment, key: str, now: datetime, steps, start, end):
    """The window's figures: for the phase window, the phase's own (``evidence.figures_of``)."""
    if key == "phase":
        run = phases.current_run(environment)
        if run is not None:
            return evidence.figures_of(run, now)
    return total_of(steps, start, end)


def window_figures(environment: Environment, key: str, now: datetime):
    """What the panels and the figures document both show of a window: ``start``, ``end``,
    ``label``, its ``steps`` of ``step`` each, and its ``total``."""
    start, end, label = window_bounds(environment, key, now)
    steps, step = figures.series(environment.pk, start, end, points=POINTS)
    total = window_total(environment, key, now, steps, start, end)
    return start, end, label, steps, step, total


def total_of(steps: list[figures.Figures], start, end) -> figures.Figures:
    total = figures.Figures(start=start, end=end)
    for step in steps:
        for cohort, cell in step.cohorts.items():
            total.cohorts[cohort].requests += cell.requests
            total.cohorts[cohort].errors_5xx += cell.errors_5xx
            total.cohorts[cohort].histogram.merge(cell.histogram)
        total.unknown_requests += step.unknown_requests
        total.upload_errors += step.upload_errors
    return total


def _plan_percent(environment: Environment):
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        return None, None
    return (0 if desired.emergency_proxy else desired.canary_percent), desired


def alert_rows(environment: Environment):
    policy = alerts.policy_for(environment.service)
    rules = list(policy.rules.all())
    states = {
        state.rule_id: state
        for state in AlertState.objects.filter(environment=environment, rule__in=rules)
    }
    return policy, [(rule, states.get(rule.pk)) for rule in rules]


def change_token(environment: Environment, key: str, now: datetime) -> str:
    """Changes whenever the panel would: new logs, an alert moving, the minute turning."""
    source = LogSource.objects.filter(environment=environment).first()
    moved = AlertState.objects.filter(environment=environment).aggregate(
        changed=Max("changed_at"), version=Max("version")
    )
    desired = DesiredConfig.objects.filter(environment=environment).values_list(
        "version", flat=True
    )
    parts = [
        key,
        figures.floor_minute(now).isoformat(),
        str(source.last_object_at if source else None),
        str(source.last_run_at if source else None),
        str(moved),
        str(list(desired)),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def panels_context(environment: Environment, key: str, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    start, end, label, steps, step, total = window_figures(environment, key, now)
    policy, rules = alert_rows(environment)
    plan, desired = _plan_percent(environment)
    source = LogSource.objects.filter(environment=environment).first()
    times = [s.start for s in steps]
    step_minutes = step.total_seconds() / 60

    def thresholds(kind, unit):
        return [
            Threshold(rule.threshold, f"{rule.name} {rule.threshold:g}{unit}")
            for rule, _state in rules
            if rule.kind == kind and rule.enabled
        ]

    share_thresholds = []
    if plan is not None:
        share_thresholds.append(
            Threshold(plan, _("plan %(plan)s%%") % {"plan": plan}, colour="#1a7f37")
        )
        for rule, _state in rules:
            if rule.kind == AlertRule.Kind.COHORT_SHARE and rule.enabled:
                points = {"points": f"{rule.threshold:g}"}
                share_thresholds += [
                    Threshold(plan + rule.threshold, _("+%(points)s points") % points),
                    Threshold(max(0.0, plan - rule.threshold), _("−%(points)s points") % points),
                ]
    charts = [
        line_chart(
            _("Cohort share (native)"),
            "%",
            times,
            [Series("native", [s.native_share for s in steps])],
            share_thresholds,
        ),
        line_chart(
            _("5xx rate per cohort"),
            "%",
            times,
            [Series(c, [s.cohorts[c].error_percent for s in steps]) for c in figures.COHORTS],
            thresholds(AlertRule.Kind.NATIVE_5XX, "%"),
        ),
        line_chart(
            _("Time to first byte"),
            "ms",
            times,
            [
                Series("native p50", [s.native.p50 for s in steps]),
                Series("native p90", [s.native.p90 for s in steps]),
                Series("native p99", [s.native.p99 for s in steps]),
                Series("proxy p90", [s.proxy.p90 for s in steps]),
            ],
            thresholds(AlertRule.Kind.NATIVE_P90, " ms"),
        ),
        line_chart(
            _("Request volume (per minute)"),
            "req/min",
            times,
            [
                Series(
                    c, [s.cohorts[c].requests / step_minutes if s.requests else None for s in steps]
                )
                for c in figures.COHORTS
            ],
        ),
    ]
    problems = []
    if source is not None:
        problems = list(
            LogObject.objects.filter(source=source)
            .exclude(state=LogObject.State.COUNTED)
            .order_by("-ingested_at")[:5]
        )
    age = source.logs_age(now) if source else None
    return {
        "environment": environment,
        "window": key,
        "window_label": label,
        "window_choices": WINDOW_CHOICES,
        "start": start,
        "end": end,
        "step_minutes": int(step_minutes),
        "total": total,
        "cohort_rows": [(name, total.cohorts[name]) for name in figures.COHORTS],
        "charts": charts,
        "policy": policy,
        "rules": rules,
        "events": AlertEvent.objects.filter(environment=environment).select_related(
            "alert__rule", "emergency_stop"
        )[:8],
        "source": source,
        "logs_age_minutes": None if age is None else age.total_seconds() / 60,
        "logs_stale": age is not None and age > timedelta(minutes=_stale_minutes(rules)),
        "problems": problems,
        "plan": plan,
        "desired": desired,
        "token": change_token(environment, key, now),
    }


def _stale_minutes(rules) -> float:
    for rule, _state in rules:
        if rule.kind == AlertRule.Kind.LOGS_STALE and rule.enabled:
            return rule.threshold
    return 15.0


def figures_document(environment: Environment, key: str, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    start, end, label, steps, step, total = window_figures(environment, key, now)
    policy, rules = alert_rows(environment)
    source = LogSource.objects.filter(environment=environment).first()
    return {
        "environment": {
            "id": str(environment.public_id),
            "service": environment.service.name,
            "name": environment.name,
        },
        "window": {"key": key, "label": label, "step_minutes": int(step.total_seconds() // 60)},
        "phase": _phase_document(environment) if key == "phase" else None,
        "total": total.as_dict(),
        "series": [
            {
                "start": s.start.isoformat(),
                "native_share_percent": None
                if s.native_share is None
                else round(s.native_share, 3),
                "r2_upload_errors": s.upload_errors,
                "cohorts": {name: cell.as_dict() for name, cell in s.cohorts.items()},
            }
            for s in steps
        ],
        "alerts": [
            {
                "rule": rule.name,
                "kind": rule.kind,
                "threshold": rule.threshold,
                "for_minutes": rule.for_minutes,
                "severity": rule.severity,
                "enabled": rule.enabled,
                "state": state.state if state else AlertState.State.INACTIVE,
                "value": state.value if state else None,
                "since": state.since.isoformat() if state and state.since else None,
                "awaiting_recovery": bool(state and state.awaiting_recovery),
            }
            for rule, state in rules
        ],
        "logs": {
            "newest_log_at": source.newest_log_at.isoformat()
            if source and source.newest_log_at
            else None,
            "last_error": source.last_error if source else "",
        },
    }


def _phase_document(environment: Environment) -> dict | None:
    run = phases.current_run(environment)
    if run is None:
        return None
    actual = phases.actual_percent(run)
    return {
        "tag": run.phase.tag,
        "window_number": run.window_number,
        "build": phases.build_of(run),
        "plan_percent": run.phase.percent,
        "actual_percent": run.phase.percent if actual is None else actual.actual,
        "in_effect_at": run.in_effect_at.isoformat(),
    }


# --- Prometheus text format ----------------------------------------------------------------------


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    return "{" + ",".join(f'{key}="{_label(value)}"' for key, value in labels.items()) + "}"


def _number(value) -> str:
    return "NaN" if value is None else repr(float(value))


def prometheus_text(now: datetime | None = None) -> str:
    """Current per-cohort figures (the last five minutes of log data) and alert states of every
    environment with a log source, in the Prometheus text exposition format 0.0.4."""
    now = now or timezone.now()
    metrics: dict[str, tuple[str, list[str]]] = {
        "rollout_requests": ("Requests per cohort, last 5 minutes of log data.", []),
        "rollout_errors_5xx": ("5xx answers per cohort, last 5 minutes of log data.", []),
        "rollout_error_ratio": ("Share of 5xx answers per cohort (0-1).", []),
        "rollout_ttfb_milliseconds": ("Edge time to first byte per cohort.", []),
        "rollout_native_share_ratio": ("Share of native requests (0-1).", []),
        "rollout_r2_upload_errors": ("Failed R2 uploads, last 5 minutes of log data.", []),
        "rollout_log_age_seconds": ("Seconds since the newest log line ingested.", []),
        "rollout_alert_state": ("1 for the state each alert rule is in.", []),
        "rollout_phase_requests": ("Requests per cohort in the current phase's window.", []),
        "rollout_phase_errors_5xx": ("5xx answers per cohort in the current phase's window.", []),
    }
    sources = LogSource.objects.select_related("environment__service").order_by("pk")
    for source in sources:
        environment = source.environment
        base = {"service": environment.service.name, "environment": environment.name}
        if source.newest_log_at is not None:
            end = figures.floor_minute(source.newest_log_at)
            current = figures.window_figures(environment.pk, end - CURRENT, end)
            for cohort, cell in current.cohorts.items():
                labels = _labels(**base, cohort=cohort)
                metrics["rollout_requests"][1].append(f"rollout_requests{labels} {cell.requests}")
                metrics["rollout_errors_5xx"][1].append(
                    f"rollout_errors_5xx{labels} {cell.errors_5xx}"
                )
                ratio = None if cell.error_percent is None else cell.error_percent / 100
                metrics["rollout_error_ratio"][1].append(
                    f"rollout_error_ratio{labels} {_number(ratio)}"
                )
                for q in figures.QUANTILES:
                    metrics["rollout_ttfb_milliseconds"][1].append(
                        "rollout_ttfb_milliseconds"
                        f"{_labels(**base, cohort=cohort, quantile=q)} {_number(cell.ttfb(q))}"
                    )
            share = None if current.native_share is None else current.native_share / 100
            metrics["rollout_native_share_ratio"][1].append(
                f"rollout_native_share_ratio{_labels(**base)} {_number(share)}"
            )
            metrics["rollout_r2_upload_errors"][1].append(
                f"rollout_r2_upload_errors{_labels(**base)} {current.upload_errors}"
            )
            age = (now - source.newest_log_at).total_seconds()
            metrics["rollout_log_age_seconds"][1].append(
                f"rollout_log_age_seconds{_labels(**base)} {_number(round(age, 1))}"
            )
        run = phases.current_run(environment)
        if run is not None:
            phase = evidence.figures_of(run, now)
            for cohort, cell in phase.cohorts.items():
                labels = _labels(
                    **base,
                    phase=run.phase.tag,
                    window=run.window_number,
                    build=phases.build_of(run),
                    cohort=cohort,
                )
                metrics["rollout_phase_requests"][1].append(
                    f"rollout_phase_requests{labels} {cell.requests}"
                )
                metrics["rollout_phase_errors_5xx"][1].append(
                    f"rollout_phase_errors_5xx{labels} {cell.errors_5xx}"
                )
        _policy, rules = alert_rows(environment)
        for rule, state in rules:
            current_state = state.state if state else AlertState.State.INACTIVE
            for name in AlertState.State.values:
                labels = _labels(**base, rule=rule.name, severity=rule.severity, state=name)
                metrics["rollout_alert_state"][1].append(
                    f"rollout_alert_state{labels} {1 if name == current_state else 0}"
                )
    lines = []
    for name, (help_text, samples) in metrics.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(samples)
    return "\n".join(lines) + "\n"
