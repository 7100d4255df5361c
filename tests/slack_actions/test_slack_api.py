"""integrations/slack_api.py against the local Slack: Slack's signature, the Web API methods we
call (form and JSON, the bot token, errors, 429 with Retry-After) and a press's response_url."""

import hashlib
import hmac

import httpx
import pytest

from integrations.slack_api import WebApi, respond, signature_problem
from tests.support.slack import BOT_TOKEN, SIGNING_SECRET, SlackStandIn

NOW = 1_700_000_000
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"


def sign(body=BODY, timestamp=NOW, secret=SIGNING_SECRET):
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def problem(**overrides):
    arguments = {
        "secret": SIGNING_SECRET,
        "timestamp": str(NOW),
        "signature": sign(),
        "body": BODY,
        "now": NOW + 10,
    }
    return signature_problem(**{**arguments, **overrides})


def test_slacks_own_signature_is_accepted_up_to_five_minutes_either_way():
    assert problem() == ""
    assert problem(now=NOW + 300) == "" and problem(now=NOW - 300) == ""


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"now": NOW + 301}, "timestamp outside the five-minute window"),
        ({"now": NOW - 301}, "timestamp outside the five-minute window"),
        ({"body": BODY + b"x"}, "signature does not match"),
        ({"signature": sign(secret="another secret")}, "signature does not match"),
        ({"signature": sign().replace("v0=", "v1=")}, "signature does not match"),
        ({"signature": sign(timestamp=NOW + 1)}, "signature does not match"),
        ({"timestamp": "1.7e9"}, "timestamp is not a number"),
        ({"timestamp": None}, "signature headers missing"),
        ({"signature": ""}, "signature headers missing"),
        ({"secret": ""}, "no signing secret configured"),
    ],
)
def test_anything_else_is_refused_saying_why(overrides, why):
    assert problem(**overrides) == why


@pytest.fixture
def slack():
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def api(slack):
    with httpx.Client(timeout=2) as client:
        yield WebApi(token=BOT_TOKEN, base_url=slack.api_url + "/", client=client)


def test_users_info_is_a_form_post_with_the_bot_token(slack, api):
    slack.add_user("U1", "theo@example.com")
    answer = api.users_info("U1")
    assert answer.ok and answer.data["user"]["profile"]["email"] == "theo@example.com"
    (call,) = slack.calls
    assert call["headers"]["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert call["args"] == {"user": "U1"}


def test_views_open_is_a_json_post(slack, api):
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Emergency stop"}}
    answer = api.views_open("trigger-1", view)
    assert answer.ok and answer.data["view"]["id"] == "V0001"
    (call,) = slack.calls
    assert call["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert call["args"] == {"trigger_id": "trigger-1", "view": view}


def test_an_error_answer_is_final_and_says_which(slack, api, settings):
    assert api.users_info("U404").error == "user_not_found"
    wrong = WebApi(token="xoxb-wrong", base_url=slack.api_url, client=api.client)
    answer = wrong.users_info("U1")
    assert (answer.ok, answer.error, answer.transient) == (False, "invalid_auth", False)
    answer = api._call("chat.nothing", data={})
    assert (answer.ok, answer.status, answer.error) == (False, 404, "unknown_method")


def test_429_is_transient_with_its_retry_after(slack, api):
    slack.answer_next(
        "users.info", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}
    )
    answer = api.users_info("U1")
    assert (answer.ok, answer.status, answer.error) == (False, 429, "ratelimited")
    assert answer.transient and answer.retry_after == 7


def test_a_server_error_or_an_unreachable_slack_is_transient(slack, api):
    slack.answer_next("users.info", 503, {"ok": False, "error": "service_unavailable"})
    assert api.users_info("U1").transient
    gone = WebApi(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api", client=api.client)
    answer = gone.views_open("t", {})
    assert not answer.ok and answer.transient and answer.error.startswith("unreachable")


def test_a_response_url_answers_ok_in_either_of_slacks_forms(slack, api):
    message = {"replace_original": True, "text": "done"}
    assert respond(slack.response_url("a"), message, client=api.client).ok
    assert slack.responses == [{"path": "/actions/a", "json": message}]
    slack.answer_next("response_url", 404, {"ok": False, "error": "expired_url"})
    answer = respond(slack.response_url("b"), message, client=api.client)
    assert (answer.ok, answer.error, answer.transient) == (False, "expired_url", False)
    slack.answer_next("response_url", 200, "ok")
    assert respond(slack.response_url("c"), message, client=api.client).ok


def test_the_bot_token_and_signing_secret_never_reach_a_log_line(settings):
    from config import log_format

    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    line = log_format.redact(f"calling users.info with {BOT_TOKEN}, secret {SIGNING_SECRET}")
    assert BOT_TOKEN not in line and SIGNING_SECRET not in line and "[redacted]" in line
