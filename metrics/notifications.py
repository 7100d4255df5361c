"""What alerts announce, and in which words: Slack #incidents and PagerDuty. Delivery (the
rows, retries, answers) is outbox.notify's job."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from integrations import pagerduty, slack
from outbox import notify
from outbox.models import Notification

from .models import AlertEvent, AlertRule, AlertState

LABELS = {
    "native_5xx_percent": ("Native 5xx", "{}%"),
    "native_requests": ("Native requests", "{}"),
    "native_5xx": ("Native 5xx answers", "{}"),
    "proxy_5xx_percent": ("Proxy 5xx", "{}%"),
    "native_p90_ms": ("Native p90", "{} ms"),
    "proxy_p90_ms": ("Proxy p90", "{} ms"),
    "native_above_proxy_percent": ("Native p90 above proxy", "{}%"),
    "r2_upload_errors": ("R2 upload errors", "{} in the minute"),
    "native_share_percent": ("Native share", "{}%"),
    "plan_percent": ("Plan", "{}%"),
    "requests": ("Requests", "{}"),
    "requests_last_hour": ("Requests, last hour", "{}"),
    "requests_hour_before": ("Requests, hour before", "{}"),
    "drop_percent": ("Drop", "{}%"),
    "minutes_since_newest_log": ("Minutes since the newest log", "{}"),
    "certain_5xx_percent": ("Native 5xx at least (logs still arriving)", "{}%"),
    "evidence_lower_bound_percent": ("Native 5xx lower bound", "{}%"),
    "evidence_needed_percent": ("Overwhelming above", "{}%"),
    "evidence_requests": ("Native requests (evidence)", "{}"),
    "evidence_5xx": ("Native 5xx answers (evidence)", "{}"),
    "evidence_confidence_percent": ("Confidence", "{}%"),
}


def _links(environment) -> list[tuple[str, str]]:
    return [
        (
            "Environment page (emergency stop)",
            settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id]),
        ),
        (
            "Metrics and alerts",
            settings.SITE_URL + reverse("metrics:environment", args=[environment.public_id]),
        ),
    ]


def figure_fields(figures: dict) -> list[tuple[str, str]]:
    shown = []
    for key, (label, pattern) in LABELS.items():
        if figures.get(key) is not None:
            shown.append((label, pattern.format(figures[key])))
    if figures.get("minute"):
        shown.append(("Minute (UTC)", figures["minute"][:16].replace("T", " ")))
    return shown


def _headline(event: AlertEvent, rule: AlertRule, environment) -> str:
    if event.new_state == AlertState.State.FIRING:
        icon = ":rotating_light:" if rule.severity == AlertRule.Severity.CRITICAL else ":warning:"
        how = " on overwhelming evidence" if event.figures.get("overwhelming_evidence") else ""
        return (
            f"{icon} *{environment}* {rule.severity.upper()}: {rule.name} is firing{how} — "
            f"{rule.describe()}"
        )
    return f":white_check_mark: *{environment}*: {rule.name} resolved — {rule.describe()}"


def announce(event: AlertEvent, *, rule: AlertRule, environment) -> None:
    """Slack #incidents and PagerDuty for a firing or resolved alert (each once per event)."""
    text = _headline(event, rule, environment)
    links = _links(environment)
    fields = figure_fields(event.figures)
    payload = slack.message(
        text + "\n" + " · ".join(f"<{url}|{label}>" for label, url in links),
        fields=fields[:10],
        link=links[0],
    )
    if event.new_state == AlertState.State.FIRING and rule.severity == AlertRule.Severity.CRITICAL:
        stop = slack.button(
            "Emergency stop…", slack.EMERGENCY_STOP, str(environment.public_id), style="danger"
        )
        payload = notify.with_slack_buttons(payload, [stop])
    notify.queue(
        channel=Notification.Channel.SLACK_INCIDENTS,
        subject=text.replace("*", "")[:200],
        payload=payload,
        related_object=f"alert-event:{event.public_id}",
    )
    dedup_key = event.alert.dedup_key
    if event.new_state == AlertState.State.FIRING:
        action = "trigger"
        pd_event = pagerduty.trigger(
            dedup_key=dedup_key,
            summary=text.replace("*", ""),
            source=str(environment),
            severity=rule.severity,
            component="native",
            group=environment.service.name,
            event_class=rule.kind,
            custom_details={"rule": rule.describe(), **event.figures},
            links=links,
            client_url=links[0][1],
        )
    else:
        action = "resolve"
        pd_event = pagerduty.resolve(dedup_key=dedup_key)
    notify.queue(
        channel=Notification.Channel.PAGERDUTY,
        subject=f"{action}: {text.replace('*', '')}"[:200],
        payload=pd_event,
        related_object=f"alert-event:{event.public_id}",
        dedup_key=dedup_key,
        event_action=action,
    )


def announce_auto_stop(event: AlertEvent, *, rule: AlertRule, environment, change) -> None:
    how = " on overwhelming evidence" if event.figures.get("overwhelming_evidence") else ""
    text = (
        f":octagonal_sign: *{environment}*: EMERGENCY STOP triggered automatically by rule "
        f"{rule.name}{how} — 100% of traffic goes to proxy (version {change.version})"
    )
    links = _links(environment)
    notify.queue(
        channel=Notification.Channel.SLACK_INCIDENTS,
        subject=text.replace("*", "")[:200],
        payload=slack.message(
            text,
            fields=figure_fields(event.figures)[:10] + [("Reason", change.reason[:300])],
            link=links[0],
        ),
        related_object=f"auto-stop:{change.public_id}",
    )
