"""Acting from Slack end to end: a signed press over HTTP to the live server, a real Celery worker
carrying it out against the local Slack, the same services and audit trail as a click, and the
message answered through its response_url."""

import pytest
from django.urls import reverse

from outbox.models import Notification
from rollout.models import AuditEntry, ConfigChange
from rollout.notifications import announce_check_in_due
from rollout.services import audit, controls
from slack_actions.models import SlackAction, SlackUser
from tests.conftest import wait_for
from tests.slack_actions.conftest import (
    due_check_in,
    increase_message,
    raise_to_b2b,
    slack_worker_env,
    stop_message,
)
from tests.support.slack import press, signed, submission

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

APPROVE = "rollout_control.approve"


@pytest.fixture
def slack_worker(start_worker, slack):
    return start_worker(env=slack_worker_env(slack))


@pytest.fixture
def endpoint(live_server):
    return live_server.url + reverse("slack_actions:interactivity")


def send(http, endpoint, payload):
    body, headers = signed(payload)
    response = http.post(endpoint, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return body, headers


def stop_dialog(slack, http, endpoint, message) -> dict:
    """UDANA presses the emergency stop on ``message``: the dialog Slack was asked to open."""
    stop = "rollout_control.emergency_stop"
    send(http, endpoint, press(slack, message, stop, user="UDANA", trigger="t-stop"))
    (opened,) = slack.calls_of("views.open")
    return opened["args"]["view"]


def answered(count=1):
    """The presses carried out and answered in Slack (waits for the worker)."""
    return wait_for(
        lambda: (
            list(SlackAction.objects.exclude(replied_at=None).order_by("id"))
            if SlackAction.objects.exclude(replied_at=None).count() >= count
            else None
        ),
        timeout=30,
        message="the worker to carry out the press and answer Slack",
    )


def test_an_approver_approves_from_slack_as_themselves(
    slack, slack_worker, endpoint, http, production_configured, release_manager, tech_lead
):
    tech_lead.email = "Theo@Example.com"
    tech_lead.save()
    slack.add_user("UTHEO", "theo@example.com")
    # Slack is busy the first time the worker asks who pressed: it asks again after Retry-After.
    slack.answer_next(
        "users.info", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
    )
    pending = raise_to_b2b(production_configured, release_manager)
    body, headers = send(
        http, endpoint, press(slack, increase_message(pending), APPROVE, user="UTHEO", trigger="t1")
    )
    # The same request again (Slack retrying, or someone replaying it): answered, not acted on.
    assert http.post(endpoint, content=body, headers=headers).status_code == 200

    (action,) = answered()
    assert (action.state, action.user) == ("done", tech_lead)
    pending.refresh_from_db()
    assert pending.state == "approved" and pending.decided_by == tech_lead
    approval = AuditEntry.objects.get(action="approval.approved")
    assert approval.actor == tech_lead and approval.via == "slack:UTHEO"
    # The change the approval applies is the requester's, not a Slack act of theirs.
    change = AuditEntry.objects.get(action="config.percent_change")
    assert change.actor == release_manager and change.via == ""
    assert audit.verify_chain().intact

    (reply,) = slack.responses
    assert reply["path"] == "/actions/t1" and reply["json"]["replace_original"] is True
    blocks = reply["json"]["blocks"]
    assert not [b for b in blocks if b.get("block_id") == "rollout_control.actions"]
    assert "Approved by theo from Slack: 25%, tag B2b queued (version 2)" in str(blocks[-1])
    assert len(slack.calls_of("users.info")) == 2
    mapping = SlackUser.objects.get()
    assert (mapping.user, mapping.source) == (tech_lead, "email")
    assert AuditEntry.objects.get(action="slack.user_matched").via == "slack:UTHEO"


def test_nobody_approves_their_own_request_from_slack_either(
    slack, slack_worker, endpoint, http, production_configured, admin_user
):
    SlackUser.objects.create(slack_user_id="UADAM", user=admin_user)
    own = raise_to_b2b(production_configured, admin_user)
    send(
        http, endpoint, press(slack, increase_message(own), APPROVE, user="UADAM", trigger="t-own")
    )

    (action,) = answered()
    assert action.state == "refused"
    own.refresh_from_db()
    assert own.state == "pending"
    refusal = AuditEntry.objects.get(action="approval.refused")
    assert refusal.actor == admin_user and refusal.via == "slack:UADAM"
    (reply,) = slack.responses
    assert reply["json"]["response_type"] == "ephemeral"
    assert reply["json"]["replace_original"] is False
    assert "cannot approve your own request" in reply["json"]["text"]
    assert not slack.calls_of("users.info"), "an admin's mapping needs no lookup"


def test_a_person_without_the_permission_and_an_unknown_slack_user_are_refused_and_audited(
    slack, slack_worker, endpoint, http, production_configured, release_manager, viewer
):
    SlackUser.objects.create(slack_user_id="UVERA", user=viewer)
    slack.add_user("UNOBODY", "nobody@elsewhere.example")
    pending = raise_to_b2b(production_configured, release_manager)
    message = increase_message(pending)
    send(http, endpoint, press(slack, message, APPROVE, user="UVERA", trigger="t-vera"))
    send(http, endpoint, press(slack, message, APPROVE, user="UNOBODY", trigger="t-nobody"))

    vera, nobody = answered(2)
    assert vera.state == nobody.state == "refused"
    pending.refresh_from_db()
    assert pending.state == "pending"
    denied = AuditEntry.objects.filter(action="permission.denied").order_by("id")
    by_vera = denied.get(actor=viewer)
    assert by_vera.via == "slack:UVERA" and "rollout.approve_increase" in by_vera.detail
    unknown = denied.get(actor=None)
    assert (unknown.actor_label, unknown.via, unknown.outcome) == (
        "slack",
        "slack:UNOBODY",
        "refused",
    )
    assert "No dashboard account has the email address nobody@elsewhere.example" in unknown.detail
    assert unknown.environment == production_configured
    replies = {reply["path"]: reply["json"] for reply in slack.responses}
    assert {reply["response_type"] for reply in replies.values()} == {"ephemeral"}
    assert "permission rollout.approve_increase" in replies["/actions/t-vera"]["text"]
    assert "ask an admin to map your Slack user" in replies["/actions/t-nobody"]["text"]
    assert not SlackUser.objects.filter(slack_user_id="UNOBODY").exists()


def test_an_on_call_engineer_stops_from_slack_with_a_reason(
    slack, slack_worker, endpoint, http, settings, production_configured, devops
):
    devops.email = "dana@example.com"
    devops.save()
    slack.add_user("UDANA", "dana@example.com")
    dialog = stop_dialog(slack, http, endpoint, stop_message(settings, production_configured))
    reason = "native 5xx at 5% for three minutes"
    body, headers = send(http, endpoint, submission(dialog, reason, user="UDANA", trigger="t-sub"))
    assert http.post(endpoint, content=body, headers=headers).status_code == 200

    (action,) = answered()
    assert (action.state, action.user, action.reason) == ("done", devops, reason)
    stop = ConfigChange.objects.get(kind="emergency_stop")
    assert stop.requested_by == devops and stop.reason == reason
    assert stop.after == {"canary_percent": 0, "canary_tag": "B2a", "emergency_proxy": True}
    entry = AuditEntry.objects.get(action="config.emergency_stop")
    assert entry.actor == devops and entry.via == "slack:UDANA" and entry.reason == reason
    (reply,) = slack.responses
    assert reply["path"] == "/actions/t-stop" and reply["json"]["replace_original"] is True
    assert "EMERGENCY STOP by dana from Slack" in str(reply["json"]["blocks"][-1])
    assert ConfigChange.objects.filter(kind="emergency_stop").count() == 1


def test_a_stop_already_on_is_refused_from_slack_and_audited_once(
    slack, slack_worker, endpoint, http, settings, production_configured, devops
):
    SlackUser.objects.create(slack_user_id="UDANA", user=devops)
    dialog = stop_dialog(slack, http, endpoint, stop_message(settings, production_configured))
    # While the dialog is open, the stop is pressed on the page.
    controls.emergency_stop(environment=production_configured, reason="first", actor=devops)
    send(http, endpoint, submission(dialog, "again", user="UDANA", trigger="t2"))

    (action,) = answered()
    assert action.state == "refused" and "already active" in action.outcome
    (refusal,) = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert (refusal.action, refusal.actor, refusal.via) == (
        "config.emergency_stop.refused",
        devops,
        "slack:UDANA",
    )
    assert refusal.environment == production_configured and "already active" in refusal.detail


def test_a_check_in_is_acknowledged_from_slack_with_what_was_checked(
    slack, slack_worker, endpoint, http, edge, release_manager
):
    from tests.conftest import configured_environment

    environment = configured_environment(edge)
    check_in = due_check_in(environment)
    announce_check_in_due(check_in)
    message = Notification.objects.get(related_object=f"check-in:{check_in.public_id}:due").payload
    SlackUser.objects.create(slack_user_id="URITA", user=release_manager)
    # Slack's response_url is busy once: the answer is sent again, the act is not repeated.
    slack.answer_next(
        "response_url", 429, {"ok": False, "error": "rate_limited"}, {"Retry-After": "1"}
    )
    send(
        http,
        endpoint,
        press(slack, message, "rollout_control.acknowledge", user="URITA", trigger="t-ack"),
    )
    (opened,) = slack.calls_of("views.open")
    assert check_in.label in str(opened["args"]["view"])
    view = opened["args"]["view"]
    send(http, endpoint, submission(view, "5xx 0.2%, p90 310 ms", user="URITA", trigger="t-s"))

    (action,) = answered()
    check_in.refresh_from_db()
    assert check_in.acknowledged_by == release_manager and check_in.note == "5xx 0.2%, p90 310 ms"
    entry = AuditEntry.objects.get(action="phase.check_in")
    assert entry.actor == release_manager and entry.via == "slack:URITA"
    assert len(slack.responses) == 2 and action.reply_attempts == 2
    assert "acknowledged by rita from Slack" in str(slack.responses[-1]["json"]["blocks"][-1])
