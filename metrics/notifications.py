"""What alerts announce, and in which words: Slack #incidents and PagerDuty. Delivery (the
rows, retries, answers) is outbox.notify's job."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations import pagerduty, slack
from outbox import notify
from outbox.models import Notification
from rollout.team_language import speaks_for

from .models import AlertEvent, AlertRule, AlertState

LABELS = {
    "native_5xx_percent": (gettext_lazy("Native 5xx"), "{}%"),
    "native_requests": (gettext_lazy("Native requests"), "{}"),
    "native_5xx": (gettext_lazy("Native 5xx answers"), "{}"),
    "proxy_5xx_percent": (gettext_lazy("Proxy 5xx"), "{}%"),
    "native_p90_ms": (gettext_lazy("Native p90"), gettext_lazy("{} ms")),
    "proxy_p90_ms": (gettext_lazy("Proxy p90"), gettext_lazy("{} ms")),
    "native_above_proxy_percent": (gettext_lazy("Native p90 above proxy"), "{}%"),
    "r2_upload_errors": (gettext_lazy("R2 upload errors"), gettext_lazy("{} in the minute")),
    "native_share_percent": (gettext_lazy("Native share"), "{}%"),
    "plan_percent": (gettext_lazy("Plan"), "{}%"),
    "requests": (gettext_lazy("Requests"), "{}"),
    "requests_last_hour": (gettext_lazy("Requests, last hour"), "{}"),
    "requests_hour_before": (gettext_lazy("Requests, hour before"), "{}"),
    "drop_percent": (gettext_lazy("Drop"), "{}%"),
    "minutes_since_newest_log": (gettext_lazy("Minutes since the newest log"), "{}"),
    "certain_5xx_percent": (gettext_lazy("Native 5xx at least (logs still arriving)"), "{}%"),
    "evidence_lower_bound_percent": (gettext_lazy("Native 5xx lower bound"), "{}%"),
    "evidence_needed_percent": (gettext_lazy("Overwhelming above"), "{}%"),
    "evidence_requests": (gettext_lazy("Native requests (evidence)"), "{}"),
    "evidence_5xx": (gettext_lazy("Native 5xx answers (evidence)"), "{}"),
    "evidence_confidence_percent": (gettext_lazy("Confidence"), "{}%"),
}


def _links(environment) -> list[tuple[str, str]]:
    return [
        (
            _("Environment page (emergency stop)"),
            settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id]),
        ),
        (
            _("Metrics and alerts"),
            settings.SITE_URL + reverse("metrics:environment", args=[environment.public_id]),
        ),
    ]


def figure_fields(figures: dict) -> list[tuple[str, str]]:
    shown = []
    for key, (label, pattern) in LABELS.items():
        if figures.get(key) is not None:
            shown.append((label, pattern.format(figures[key])))
    if figures.get("evidence_from"):
        # Where the evidence starts, to the second, says more than the newest minute (and
        # Slack shows ten fields at most).
        shown.append((_("Evidence since (UTC)"), figures["evidence_from"][:19].replace("T", " ")))
    elif figures.get("minute"):
        shown.append((_("Minute (UTC)"), figures["minute"][:16].replace("T", " ")))
    return shown


def _headline(event: AlertEvent, rule: AlertRule, environment) -> str:
    if event.new_state == AlertState.State.FIRING:
        icon = ":rotating_light:" if rule.severity == AlertRule.Severity.CRITICAL else ":warning:"
        if event.figures.get("overwhelming_evidence"):
            text = _(
                "%(icon)s *%(environment)s* %(upper)s: %(name)s is firing on overwhelming "
                "evidence — %(rule)s"
            )
        else:
            text = _("%(icon)s *%(environment)s* %(upper)s: %(name)s is firing — %(rule)s")
        return text % {
            "icon": icon,
            "environment": environment,
            "upper": rule.severity.upper(),
            "name": rule.name,
            "rule": rule.describe(),
        }
    return _(":white_check_mark: *%(environment)s*: %(name)s resolved — %(rule)s") % {
        "environment": environment,
        "name": rule.name,
        "rule": rule.describe(),
    }


@speaks_for(lambda event, **kwargs: kwargs["environment"])
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
            _("Emergency stop…"), slack.EMERGENCY_STOP, str(environment.public_id), style="danger"
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


@speaks_for(lambda event, **kwargs: kwargs["environment"])
def announce_auto_stop(event: AlertEvent, *, rule: AlertRule, environment, change) -> None:
    if event.figures.get("overwhelming_evidence"):
        text = _(
            ":octagonal_sign: *%(environment)s*: EMERGENCY STOP triggered automatically by "
            "rule %(name)s on overwhelming evidence — 100%% of traffic goes to proxy (version "
            "%(version)s)"
        )
    else:
        text = _(
            ":octagonal_sign: *%(environment)s*: EMERGENCY STOP triggered automatically by "
            "rule %(name)s — 100%% of traffic goes to proxy (version %(version)s)"
        )
    text = text % {"environment": environment, "name": rule.name, "version": change.version}
    links = _links(environment)
    notify.queue(
        channel=Notification.Channel.SLACK_INCIDENTS,
        subject=text.replace("*", "")[:200],
        payload=slack.message(
            text,
            fields=figure_fields(event.figures)[:10] + [(_("Reason"), change.reason[:300])],
            link=links[0],
        ),
        related_object=f"auto-stop:{change.public_id}",
    )
