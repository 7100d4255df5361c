"""The one-second cache of the live fragments (rollout.views.environments._live_fragment): every
poll inside the second gets the same rendering without the view's queries, whoever asks; the
log-in and permission check still run for each; a change shows once the second is over; full
pages and unknown environments are unaffected."""

import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from integrations.kv_value import CanarySettings
from rollout.services import controls
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.LIVE_FRAGMENT_CACHE_SECONDS = 1
    cache.clear()
    yield
    cache.clear()


def poll(client, url):
    """(response, SQL statements it ran)."""
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, HTTP_HX_REQUEST="true")
    return response, statements


def rollout_queries(statements):
    return [sql for sql in statements if '"rollout_' in sql]


@pytest.mark.parametrize("fragment", ["overview", "environment"])
def test_polls_inside_the_second_share_one_rendering(
    cached, production_configured, viewer, devops, fragment
):
    # DevOps may not approve: an approver's overview is their own rendering (its buttons).
    url = (
        reverse("rollout:overview")
        if fragment == "overview"
        else reverse("rollout:environment", args=[production_configured.public_id])
    )
    first, first_statements = poll(client_for(viewer), url)
    second, second_statements = poll(client_for(devops), url)
    assert first.status_code == second.status_code == 200
    assert "10%" in first.content.decode()
    assert second.content == first.content
    assert rollout_queries(first_statements)
    assert rollout_queries(second_statements) == []
    # Each poll still checks who asks.
    assert any('"django_session"' in sql for sql in second_statements)
    assert any('"auth_permission"' in sql for sql in second_statements)


def test_a_change_shows_once_the_second_is_over(
    cached, production_configured, viewer, release_manager
):
    client = client_for(viewer)
    url = reverse("rollout:environment", args=[production_configured.public_id])
    assert "version 2" not in poll(client, url)[0].content.decode()
    controls.request_change(
        environment=production_configured,
        settings=CanarySettings(5, "B2a", False),
        kind="percent_change",
        expected_version=1,
        reason="lower",
        actor=release_manager,
    )
    # The full page is never cached.
    assert "version 2" in client.get(url).content.decode()
    time.sleep(1.1)
    assert "version 2" in poll(client, url)[0].content.decode()


def test_the_cache_checks_permission_and_existence_first(
    cached, production_configured, viewer, outsider
):
    url = reverse("rollout:environment", args=[production_configured.public_id])
    assert poll(client_for(viewer), url)[0].status_code == 200
    assert poll(client_for(outsider), url)[0].status_code == 403
    unknown = reverse("rollout:environment", args=["00000000-0000-0000-0000-000000000000"])
    assert poll(client_for(viewer), unknown)[0].status_code == 404
