"""What the rollout app announces, and in which words: config changes, phases, check-ins and
decisions, the pre-flight announcement. Delivery is outbox.notify's job."""

from django.conf import settings
from django.urls import reverse

from integrations import slack
from outbox import notify
from outbox.models import Notification

from .models import ConfigChange


def announce_change_outcome(change: ConfigChange):
    """Post to #deployments when a change reaches "in effect" or fails."""
    environment = change.environment
    target = change.settings
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    if change.state == ConfigChange.State.IN_EFFECT:
        seconds = change.time_to_effect.total_seconds()
        text = (
            f":white_check_mark: *{environment}*: {target.describe()} is in effect "
            f"({change.get_kind_display()}, {seconds:.0f}s after the request)"
        )
    elif change.state == ConfigChange.State.FAILED:
        text = (
            f":x: *{environment}*: {change.get_kind_display()} to {target.describe()} "
            f"FAILED: {change.last_error}"
        )
    else:
        return None
    payload = slack.message(
        text,
        fields=[
            ("Requested by", change.actor_label),
            ("Reason", change.reason[:300]),
            ("Version", str(change.version)),
        ],
        link=("Open the environment", link),
    )
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"config-change:{change.public_id}:{change.state}",
    )


def announce_increase_requested(percent_request):
    """Post to #deployments that a raise of the percent waits for a second person."""
    environment = percent_request.environment
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    who = percent_request.requested_by.get_username()
    text = (
        f":raised_hand: *{environment}*: {who} asks to raise the percent — "
        f"{percent_request.summary}; a second person approves"
    )
    payload = slack.message(
        text, fields=[("Reason", percent_request.reason[:300])], link=("Open the environment", link)
    )
    value = str(percent_request.public_id)
    payload = notify.with_slack_buttons(
        payload,
        [
            slack.button(
                "Approve",
                slack.APPROVE,
                value,
                style="primary",
                confirm=slack.confirmation(
                    "Approve the increase?",
                    f"{percent_request.summary}, requested by {who}",
                    confirm="Approve",
                ),
            ),
            slack.button(
                "Reject",
                slack.REJECT,
                value,
                confirm=slack.confirmation(
                    "Reject the increase?", percent_request.summary, confirm="Reject"
                ),
            ),
        ],
    )
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"percent-request:{percent_request.public_id}:pending",
    )


def announce_decision_due(run):
    """Post to #deployments that a phase's window ended and its decision waits for signers."""
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    text = (
        f":hourglass: *{environment}*: the observation window of {run} ended; "
        "the GO / NO-GO decision is due (tech lead and DevOps sign)"
    )
    payload = slack.message(text, fields=[], link=("Open the decision", link))
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"phase-run:{run.public_id}:decision_due",
    )


def announce_check_in_due(check_in):
    """Post to #deployments that a check-in of the runbook's schedule is due."""
    run = check_in.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    text = (
        f":alarm_clock: *{environment}*: check-in {check_in.label} of {run} is due — "
        f"{check_in.purpose}"
    )
    payload = slack.message(
        text,
        fields=[("Acknowledge by", f"{check_in.missed_after:%Y-%m-%d %H:%M} UTC")],
        link=("Open the phase", link),
    )
    payload = notify.with_slack_buttons(
        payload, [slack.button("Acknowledge…", slack.ACKNOWLEDGE, str(check_in.public_id))]
    )
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"check-in:{check_in.public_id}:due",
    )


def announce_decision(decision, signers: str):
    """Post to #deployments that a decision took effect, with what it does and its report."""
    run = decision.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_report", args=[run.public_id])
    icon = {"go": ":rocket:", "hold": ":pause_button:", "no_go": ":rotating_light:"}
    effect = {
        "go": "the next phase starts through its pre-flight",
        "hold": "the phase stays and a new window starts",
        "no_go": "rolled back to 0%, post-mortem opened",
    }
    text = (
        f"{icon[decision.outcome]} *{environment}*: {decision.get_outcome_display()} for {run} "
        f"signed by {signers} — {effect[decision.outcome]}"
    )
    fields = [("Recommendation", decision.get_recommendation_display())]
    if decision.justification:
        fields.append(("Justification", decision.justification[:300]))
    payload = slack.message(text, fields=fields, link=("Open the report", link))
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"decision:{decision.public_id}:effective",
    )


def announce_phase_start(checklist, *, person, start_at, oncall: list, engineers: list):
    """The runbook's step 3.4 post to #deployments, written for the phase about to start from
    its pre-flight ``checklist`` (``rollout.services.preflight.Checklist``)."""
    environment = checklist.environment
    phase = checklist.phase
    preview = checklist.item("preview_suite")
    review_at = start_at + phase.min_observation
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    text = (
        f":rocket: *{environment.service.name} {phase.tag} production start* — "
        f"{phase.percent}% native, {100 - phase.percent}% proxy "
        f"(now {checklist.desired.settings.describe()})"
    )
    fields = [
        ("Environment", f"production ({environment.qa_url})"),
        ("Canary", f"{phase.percent}% native, {100 - phase.percent}% proxy, tag {phase.tag}"),
        ("Planned start", f"{start_at:%Y-%m-%d %H:%M} UTC"),
        ("Preview suite", preview.detail),
        (
            "Monitoring",
            "Dashboard (button below); logs: R2 bucket logs-canary; rollback: "
            + (settings.ROLLBACK_RUNBOOK_URL or "docs/runbooks/rollback_b2a.md"),
        ),
        ("On-call", ", ".join(oncall) or "to be confirmed"),
        ("Engineers available", ", ".join(engineers) or "to be confirmed"),
        ("Next review", f"+{_hours(phase.min_observation)} ({review_at:%Y-%m-%d %H:%M} UTC)"),
        ("Announced by", person.get_username()),
    ]
    payload = slack.message(text, fields=fields, link=("Open production", link))
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
    )


def _hours(duration) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g}h"
