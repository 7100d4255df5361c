"""The interactivity endpoint over HTTP (the live server): Slack's signature, the replay window,
a replayed press, what it ignores and what it refuses, before any work is queued."""

import hashlib
import hmac
import time

import pytest
from django.urls import reverse

from rollout.models import AuditEntry
from slack_actions.models import SlackAction
from tests.slack_actions.conftest import increase_message, raise_to_b2b, stop_message
from tests.support.slack import SIGNING_SECRET, press, signed, submission

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def endpoint(live_server):
    return live_server.url + reverse("slack_actions:interactivity")


@pytest.fixture
def pending(slack, production_configured, release_manager):
    """A raise waiting for a second person, announced in #deployments with its buttons."""
    return raise_to_b2b(production_configured, release_manager)


def post(http, endpoint, payload, **signing):
    body, headers = signed(payload, **signing)
    return http.post(endpoint, content=body, headers=headers)


def approve_press(slack, pending, trigger="trigger-1"):
    return press(
        slack, increase_message(pending), "rollout_control.approve", user="U1", trigger=trigger
    )


def test_a_signed_press_is_recorded_once_however_often_it_is_replayed(
    slack, pending, endpoint, http
):
    payload = approve_press(slack, pending)
    body, headers = signed(payload)
    first = http.post(endpoint, content=body, headers=headers)
    again = http.post(endpoint, content=body, headers=headers)
    assert first.status_code == 200 and again.status_code == 200
    (action,) = SlackAction.objects.all()
    assert action.action == "rollout_control.approve" and action.slack_user_id == "U1"
    assert action.object_id == str(pending.public_id)
    assert action.response_url == slack.response_url("trigger-1")


@pytest.mark.parametrize(
    "tamper",
    [
        "signature",
        "body",
        "old timestamp",
        "future timestamp",
        "timestamp not a number",
        "no headers",
        "other secret",
    ],
)
def test_a_request_not_signed_by_slack_is_refused_and_nothing_recorded(
    slack, pending, endpoint, http, tamper
):
    body, headers = signed(approve_press(slack, pending))
    if tamper == "signature":
        headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-4] + "0000"
    elif tamper == "body":
        body = body.replace(b"U1", b"U2")
    elif tamper == "old timestamp":
        body, headers = signed(approve_press(slack, pending), timestamp=int(time.time()) - 301)
    elif tamper == "future timestamp":
        body, headers = signed(approve_press(slack, pending), timestamp=int(time.time()) + 301)
    elif tamper == "timestamp not a number":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    elif tamper == "no headers":
        del headers["X-Slack-Signature"], headers["X-Slack-Request-Timestamp"]
    else:
        body, headers = signed(approve_press(slack, pending), secret="not-" + SIGNING_SECRET)
    response = http.post(endpoint, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert "Not a request from Slack" in response.text
    assert not SlackAction.objects.exists()


def test_an_unknown_action_or_a_link_button_is_acknowledged_and_ignored(
    slack, pending, endpoint, http
):
    payload = approve_press(slack, pending)
    payload["actions"][0]["action_id"] = "rollout_control.delete_everything"
    assert post(http, endpoint, payload).status_code == 200
    link = approve_press(slack, pending, trigger="trigger-2")
    link["actions"][0] = {"type": "button", "action_id": "x9Qa", "url": "https://example.com"}
    assert post(http, endpoint, link).status_code == 200
    assert post(http, endpoint, {"type": "view_closed", "view": {}}).status_code == 200
    assert not SlackAction.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"payload=not-json", b"nopayload=1", b"payload=%5B1%2C2%5D", b"\xff\xfe", b""],
)
def test_a_signed_body_that_is_no_payload_is_a_bad_request(slack, endpoint, http, body):
    stamp = str(int(time.time()))
    signature = hmac.new(
        SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    response = http.post(
        endpoint,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + signature,
        },
    )
    assert response.status_code == 400 and "payload" in response.text


def test_an_oversized_body_is_refused_before_it_is_read(slack, endpoint, http):
    body, headers = signed({"type": "block_actions", "padding": "x" * 300_000})
    response = http.post(endpoint, content=body, headers=headers)
    assert response.status_code == 413 and "at most" in response.text


def test_the_endpoint_never_sends_slack_to_the_log_in_page(slack, endpoint, http):
    response = http.get(endpoint, follow_redirects=False)
    assert response.status_code == 405
    response = http.post(endpoint, content=b"", follow_redirects=False)
    assert response.status_code == 401  # no CSRF refusal, no redirect: the signature decides
    assert not AuditEntry.objects.filter(action="permission.denied").exists()


def test_without_the_slack_app_configured_the_endpoint_is_not_there(
    settings, live_server, http, release_manager
):
    settings.SLACK_BOT_TOKEN = ""
    body, headers = signed({"type": "block_actions"})
    response = http.post(
        live_server.url + reverse("slack_actions:interactivity"), content=body, headers=headers
    )
    assert response.status_code == 404


def test_the_stop_opens_a_dialog_naming_what_will_happen_within_the_request(
    slack, settings, endpoint, http, production_configured
):
    message = stop_message(settings, production_configured)
    payload = press(slack, message, "rollout_control.emergency_stop", user="U9", trigger="t-stop")
    assert post(http, endpoint, payload).status_code == 200
    # Opened before the answer: the trigger is good for three seconds only.
    (opened,) = slack.calls_of("views.open")
    assert opened["headers"]["Authorization"] == "Bearer " + settings.SLACK_BOT_TOKEN
    assert opened["args"]["trigger_id"] == "t-stop"
    view = opened["args"]["view"]
    text = view["blocks"][0]["text"]["text"]
    assert "production: EMERGENCY STOP — 100% of traffic to proxy at once" in text
    assert view["blocks"][-1]["element"]["max_length"] == 1000
    action = SlackAction.objects.get()
    assert action.state == "dialog" and view["private_metadata"] == str(action.public_id)

    empty = submission(view, "   ", user="U9", trigger="t-submit")
    answer = post(http, endpoint, empty)
    assert answer.status_code == 200
    assert answer.json() == {
        "response_action": "errors",
        "errors": {"reason": "Say in a few words why."},
    }
    assert SlackAction.objects.get().state == "dialog", "nothing queued without a reason"

    someone_else = submission(view, "5xx at 4%", user="U8", trigger="t-other")
    assert post(http, endpoint, someone_else).status_code == 200
    assert SlackAction.objects.get().state == "dialog", "only the presser's own dialog counts"


def test_a_dialog_slack_would_not_open_is_answered_with_the_dashboard(
    slack, settings, endpoint, http, production_configured
):
    slack.answer_next("views.open", 200, {"ok": False, "error": "expired_trigger_id"})
    message = stop_message(settings, production_configured)
    payload = press(slack, message, "rollout_control.emergency_stop", user="U9", trigger="t-late")
    assert post(http, endpoint, payload).status_code == 200
    action = SlackAction.objects.get()
    assert action.state == "failed"
    assert "expired_trigger_id" in action.outcome
    assert f"/environments/{production_configured.public_id}/" in action.outcome
