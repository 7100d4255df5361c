"""Acting from Slack: the local Slack (tests/support/slack.py) and Django configured for it."""

import httpx
import pytest

from tests.support.slack import BOT_TOKEN, SIGNING_SECRET, SlackStandIn


@pytest.fixture
def slack(settings):
    """The local Slack, with Django's Slack app settings pointing at it."""
    with SlackStandIn() as stand_in:
        settings.SLACK_BOT_TOKEN = BOT_TOKEN
        settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
        settings.SLACK_API_BASE_URL = stand_in.api_url
        settings.SLACK_RESPONSE_URL_PREFIX = stand_in.response_url_prefix
        yield stand_in


def slack_worker_env(slack) -> dict:
    """A worker's environment for the same local Slack."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": slack.api_url,
        "SLACK_RESPONSE_URL_PREFIX": slack.response_url_prefix,
    }


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client
