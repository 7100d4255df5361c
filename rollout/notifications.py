"""What the rollout app announces, and in which words: config changes, phases, check-ins and
decisions, the pre-flight announcement. Delivery is outbox.notify's job."""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from integrations import slack
from outbox import notify
from outbox.models import Notification

from .models import ConfigChange
from .team_language import speaks_for


def _announce(channel, text: str, *, fields, link, related_object: str = "", buttons=()):
    """Queue one Slack message: the text, its fields and a button to the page named; with
    ``buttons``, the actions a person may take from Slack (where Slack actions are set up)."""
    payload = slack.message(text, fields=fields, link=link)
    if buttons:
        payload = notify.with_slack_buttons(payload, list(buttons))
    return notify.queue(
        channel=channel, subject=text[:200], payload=payload, related_object=related_object
    )


@speaks_for(lambda change: change.environment)
def announce_change_outcome(change: ConfigChange):
    """Post to #deployments when a change reaches "in effect" or fails."""
    environment = change.environment
    target = change.settings
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    if change.state == ConfigChange.State.IN_EFFECT:
        seconds = change.time_to_effect.total_seconds()
        text = _(
            ":white_check_mark: *%(environment)s*: %(target)s is in effect "
            "(%(kind)s, %(seconds)ss after the request)"
        ) % {
            "environment": environment,
            "target": target.describe(),
            "kind": change.get_kind_display(),
            "seconds": format(seconds, ".0f"),
        }
    elif change.state == ConfigChange.State.FAILED:
        text = _(":x: *%(environment)s*: %(kind)s to %(target)s FAILED: %(last_error)s") % {
            "environment": environment,
            "kind": change.get_kind_display(),
            "target": target.describe(),
            "last_error": change.last_error,
        }
    else:
        return None
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[
            (_("Requested by"), change.actor_label),
            (_("Reason"), change.reason[:300]),
            (_("Version"), str(change.version)),
        ],
        link=(_("Open the environment"), link),
        related_object=f"config-change:{change.public_id}:{change.state}",
    )


@speaks_for(lambda percent_request: percent_request.environment)
def announce_increase_requested(percent_request):
    """Post to #deployments that a raise of the percent waits for a second person."""
    environment = percent_request.environment
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    who = percent_request.requested_by.get_username()
    text = _(
        ":raised_hand: *%(environment)s*: %(who)s asks to raise the percent — "
        "%(summary)s; a second person approves"
    ) % {"environment": environment, "who": who, "summary": percent_request.summary}
    value = str(percent_request.public_id)
    approve = slack.button(
        _("Approve"),
        slack.APPROVE,
        value,
        style="primary",
        confirm=slack.confirmation(
            _("Approve the increase?"),
            _("%(summary)s, requested by %(who)s")
            % {"summary": percent_request.summary, "who": who},
            confirm=_("Approve"),
        ),
    )
    reject = slack.button(
        _("Reject"),
        slack.REJECT,
        value,
        confirm=slack.confirmation(
            _("Reject the increase?"), percent_request.summary, confirm=_("Reject")
        ),
    )
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[(_("Reason"), percent_request.reason[:300])],
        link=(_("Open the environment"), link),
        related_object=f"percent-request:{percent_request.public_id}:pending",
        buttons=[approve, reject],
    )


@speaks_for(lambda run: run.rollout.environment)
def announce_decision_due(run):
    """Post to #deployments that a phase's window ended and its decision waits for signers."""
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    text = _(
        ":hourglass: *%(environment)s*: the observation window of %(run)s "
        "ended; the GO / NO-GO decision is due (tech lead and DevOps sign)"
    ) % {"environment": environment, "run": run}
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[],
        link=(_("Open the decision"), link),
        related_object=f"phase-run:{run.public_id}:decision_due",
    )


@speaks_for(lambda check_in: check_in.phase_run.rollout.environment)
def announce_check_in_due(check_in):
    """Post to #deployments that a check-in of the runbook's schedule is due."""
    run = check_in.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    text = _(
        ":alarm_clock: *%(environment)s*: check-in %(label)s of %(run)s is due — %(purpose)s"
    ) % {
        "environment": environment,
        "label": check_in.label_words,
        "run": run,
        "purpose": _(check_in.purpose),
    }
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=[
            (
                _("Acknowledge by"),
                _("%(missed_after)s UTC")
                % {"missed_after": format(check_in.missed_after, "%Y-%m-%d %H:%M")},
            )
        ],
        link=(_("Open the phase"), link),
        related_object=f"check-in:{check_in.public_id}:due",
        buttons=[slack.button("Acknowledge…", slack.ACKNOWLEDGE, str(check_in.public_id))],
    )


@speaks_for(lambda decision, signers: decision.phase_run.rollout.environment)
def announce_decision(decision, signers: str):
    """Post to #deployments that a decision took effect, with what it does and its report."""
    run = decision.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_report", args=[run.public_id])
    icon = {"go": ":rocket:", "hold": ":pause_button:", "no_go": ":rotating_light:"}
    effect = {
        "go": _("the next phase starts through its pre-flight"),
        "hold": _("the phase stays and a new window starts"),
        "no_go": _("rolled back to 0%, post-mortem opened"),
    }
    text = _(
        "%(outcome)s *%(environment)s*: %(outcome2)s for %(run)s signed by "
        "%(signers)s — %(outcome3)s"
    ) % {
        "outcome": icon[decision.outcome],
        "environment": environment,
        "outcome2": decision.get_outcome_display(),
        "run": run,
        "signers": signers,
        "outcome3": effect[decision.outcome],
    }
    fields = [(_("Recommendation"), decision.get_recommendation_display())]
    if decision.justification:
        fields.append((_("Justification"), decision.justification[:300]))
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=fields,
        link=(_("Open the report"), link),
        related_object=f"decision:{decision.public_id}:effective",
    )


@speaks_for(lambda checklist, **kwargs: checklist.environment)
def announce_phase_start(checklist, *, person, start_at, oncall: list, engineers: list):
    """The runbook's step 3.4 post to #deployments, written for the phase about to start from
    its pre-flight ``checklist`` (``rollout.services.preflight.Checklist``)."""
    environment = checklist.environment
    phase = checklist.phase
    preview = checklist.item("preview_suite")
    review_at = start_at + phase.min_observation
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    text = _(
        ":rocket: *%(name)s %(tag)s production start* — %(percent)s%% native, "
        "%(percent2)s%% proxy (now %(settings)s)"
    ) % {
        "name": environment.service.name,
        "tag": phase.tag,
        "percent": phase.percent,
        "percent2": 100 - phase.percent,
        "settings": checklist.desired.settings.describe(),
    }
    fields = [
        (_("Environment"), _("production (%(qa_url)s)") % {"qa_url": environment.qa_url}),
        (
            _("Canary"),
            _("%(percent)s%% native, %(percent2)s%% proxy, tag %(tag)s")
            % {"percent": phase.percent, "percent2": 100 - phase.percent, "tag": phase.tag},
        ),
        (
            _("Planned start"),
            _("%(start_at)s UTC") % {"start_at": format(start_at, "%Y-%m-%d %H:%M")},
        ),
        (_("Preview suite"), preview.detail),
        (
            _("Monitoring"),
            _("Dashboard (button below); logs: R2 bucket logs-canary; rollback: ")
            + (settings.ROLLBACK_RUNBOOK_URL or "docs/runbooks/rollback_b2a.md"),
        ),
        ("On-call", ", ".join(oncall) or _("to be confirmed")),
        (_("Engineers available"), ", ".join(engineers) or _("to be confirmed")),
        (
            _("Next review"),
            _("+%(min_observation)s (%(review_at)s UTC)")
            % {
                "min_observation": _hours(phase.min_observation),
                "review_at": format(review_at, "%Y-%m-%d %H:%M"),
            },
        ),
        (_("Announced by"), person.get_username()),
    ]
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=fields,
        link=(_("Open production"), link),
    )


def _hours(duration) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g}h"


def announce_break_glass(entry):
    """Post to #incidents that a break-glass account logged in with its local password
    (``entry``: the audit entry of that log-in)."""
    link = settings.SITE_URL + reverse("rollout:audit") + f"?actor={entry.actor_label}"
    text = _(
        ":rotating_light: Break-glass log-in: *%(actor_label)s* logged in to "
        "Rollout Control with a local password"
    ) % {"actor_label": entry.actor_label}
    return _announce(
        Notification.Channel.SLACK_INCIDENTS,
        text,
        fields=[
            (_("From"), entry.client_ip or _("unknown address")),
            (
                _("At"),
                _("%(created_at)s UTC")
                % {"created_at": format(entry.created_at, "%Y-%m-%d %H:%M:%S")},
            ),
        ],
        link=(_("Their audit trail"), link),
        related_object=f"break-glass:{entry.pk}",
    )


@speaks_for(lambda change: change.phase_run.rollout.environment)
def announce_build_change(change):
    """Post to #deployments that the Worker build changed under a phase's open window."""
    run = change.phase_run
    environment = run.rollout.environment
    link = settings.SITE_URL + reverse("rollout:phase_run", args=[run.public_id])
    after = change.after
    text = _(
        ":warning: *%(environment)s*: a new Worker build went live while "
        "%(run)s is observing — %(old_build)s → %(new_build)s at "
        "%(changed_at)s UTC. GO waits until someone restarts the window or "
        "keeps it with a reason."
    ) % {
        "environment": environment,
        "run": run,
        "old_build": change.old_build,
        "new_build": change.new_build,
        "changed_at": format(change.changed_at, "%Y-%m-%d %H:%M"),
    }
    fields = [(_("Deployed by"), after.author)]
    if after.message:
        fields.append((_("Message"), after.message[:300]))
    return _announce(
        Notification.Channel.SLACK_DEPLOYMENTS,
        text,
        fields=fields,
        link=(_("Open the phase"), link),
        related_object=f"build-change:{change.public_id}",
    )
