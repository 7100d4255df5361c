"""What the rollout app announces, and in which words: config changes, phases, check-ins and
decisions, the pre-flight announcement. Delivery is outbox.notify's job."""

from django.conf import settings
from django.urls import reverse

from integrations import slack
from outbox import notify
from outbox.models import Notification

from .models import ConfigChange


def _announce(channel, text: str, *, fields, link, related_object: str = "", buttons=()):
    """Queue one Slack message: the text, its fields and a button to the page named; with
    ``buttons``, the actions a person may take from Slack (where Slack actions are set up)."""
    payload = slack.message(text, fields=fields, link=link)
    if buttons:
        payload = notify.with_slack_buttons(payload, list(buttons))
    return notify.queue(
        channel=channel, subject=text[:200], payload=payload, related_object=related_object
    )


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
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[
            ("Requested by", change.actor_label),
            ("Reason", change.reason[:300]),
            ("Version", str(change.version)),
        ],
        link=("Open the environment", link),
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
    value = str(percent_request.public_id)
    approve = slack.button(
        "Approve",
        slack.APPROVE,
        value,
        style="primary",
        confirm=slack.confirmation(
            "Approve the increase?",
            f"{percent_request.summary}, requested by {who}",
            confirm="Approve",
        ),
    )
    reject = slack.button(
        "Reject",
        slack.REJECT,
        value,
        confirm=slack.confirmation(
            "Reject the increase?", percent_request.summary, confirm="Reject"
        ),
    )
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[("Reason", percent_request.reason[:300])],
        link=("Open the environment", link),
        related_object=f"percent-request:{percent_request.public_id}:pending",
        buttons=[approve, reject],
    )


def announce_decision_due(run):
    """Post to #deployments that a phase's window ended and its decision waits for signers."""
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    text = (
        f":hourglass: *{environment}*: the observation window of {run} ended; "
        "the GO / NO-GO decision is due (tech lead and DevOps sign)"
    )
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[],
        link=("Open the decision", link),
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
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[("Acknowledge by", f"{check_in.missed_after:%Y-%m-%d %H:%M} UTC")],
        link=("Open the phase", link),
        related_object=f"check-in:{check_in.public_id}:due",
        buttons=[slack.button("Acknowledge…", slack.ACKNOWLEDGE, str(check_in.public_id))],
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
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=fields,
        link=("Open the report", link),
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
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS, text, fields=fields, link=("Open production", link)
    )


def _hours(duration) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g}h"


def announce_break_glass(entry):
    """Post to #incidents that a break-glass account logged in with its local password
    (``entry``: the audit entry of that log-in)."""
    link = settings.SITE_URL + reverse("rollout:audit") + f"?actor={entry.actor_label}"
    text = (
        f":rotating_light: Break-glass log-in: *{entry.actor_label}* logged in to Rollout Control"
        " with a local password"
    )
    return _announce(
        Notification.Channel.SLACK_INCIDENTS,
        text,
        fields=[
            ("From", entry.client_ip or "unknown address"),
            ("At", f"{entry.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ],
        link=("Their audit trail", link),
        related_object=f"break-glass:{entry.pk}",
    )


def announce_build_change(change):
    """Post to #deployments that the Worker build changed under a phase's open window."""
    run = change.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    after = change.after
    text = (
        f":warning: *{environment}*: a new Worker build went live while {run} is observing — "
        f"{change.old_build} → {change.new_build} at {change.changed_at:%Y-%m-%d %H:%M} UTC. "
        "GO waits until someone restarts the window or keeps it with a reason."
    )
    fields = [("Deployed by", after.author)]
    if after.message:
        fields.append(("Message", after.message[:300]))
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=fields,
        link=("Open the phase", link),
        related_object=f"build-change:{change.public_id}",
    )
