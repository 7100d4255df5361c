"""The monitoring pages: the standalone page, the live cohort panel and its "nothing changed"
answer, the on-demand sample button, the checks history, and secrets never shown."""

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from monitoring import sampler
from monitoring.models import CohortSample, DriftState, HealthCheck
from monitoring.observation import observe
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

SECRET = "monitoring-secret-7f3a"


def page_url(environment):
    return reverse("monitoring:environment", args=[environment.public_id])


def panel_url(environment):
    return reverse("monitoring:cohort_panel", args=[environment.public_id])


def sample_url(environment):
    return reverse("monitoring:sample_now", args=[environment.public_id])


def checks_url(environment):
    return reverse("monitoring:checks", args=[environment.public_id])


def token_of(content: bytes) -> str:
    return re.search(rb'data-token="([0-9a-f]+)"', content).group(1).decode()


@pytest.fixture
def observed(planned, settings):
    """Production with a sample and an observation (health check, drift state) behind it."""
    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/production": {"X-Monitoring-Token": SECRET}
    }
    sample, _ = sampler.queue_sample(planned, trigger="manual")
    sampler.run_sample(sample.pk)
    observe(planned.pk)
    return planned


# --- reading ---------------------------------------------------------------------------------


def test_the_page_shows_split_chart_health_and_drift(observed, viewer):
    response = client_for(viewer).get(page_url(observed))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Live cohort split" in content and 'class="split-bar"' in content
    assert 'class="history"' in content and "<circle" in content
    assert "database" in content and "r2_bucket" in content and "proxy_origin" in content
    assert "matches desired" in content and "reports the KV value" in content
    assert re.search(r"native <strong data-native>\d+</strong>", content)
    assert "<strong data-plan>10%</strong>" in content
    # Viewers see no buttons that act.
    assert "Sample now" not in content and "Overwrite" not in content


def test_the_panel_alone_is_a_fragment_that_polls_itself(observed, viewer):
    response = client_for(viewer).get(panel_url(observed), headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"<html" not in response.content
    assert b'hx-trigger="every 3s"' in response.content
    assert b'hx-swap="outerHTML"' in response.content


def test_the_panel_answers_nothing_changed_until_something_does(observed, viewer):
    client = client_for(viewer)
    token = token_of(client.get(panel_url(observed)).content)
    assert client.get(panel_url(observed), {"u": token}).status_code == 204
    sample, _ = sampler.queue_sample(observed, trigger="manual")
    sampler.run_sample(sample.pk)
    changed = client.get(panel_url(observed), {"u": token})
    assert changed.status_code == 200 and token_of(changed.content) != token


def test_the_probe_headers_are_never_shown(observed, admin_user):
    client = client_for(admin_user)
    for url in (page_url(observed), panel_url(observed), checks_url(observed)):
        assert SECRET not in client.get(url).content.decode()


@pytest.mark.parametrize("url", [page_url, panel_url, checks_url])
def test_reading_needs_a_login_and_a_role(observed, outsider, url):
    response = Client().get(url(observed))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client_for(outsider).get(url(observed)).status_code == 403


def test_an_unknown_environment_is_404(viewer):
    url = reverse("monitoring:environment", args=[uuid.uuid4()])
    assert client_for(viewer).get(url).status_code == 404


def test_a_panel_with_nothing_yet(production, viewer):
    content = client_for(viewer).get(panel_url(production)).content.decode()
    assert "No sample yet." in content and "No health check yet." in content


def test_a_failed_sample_is_shown(production, viewer):
    sample, _ = sampler.queue_sample(production, trigger="manual")
    sampler.run_sample(sample.pk)  # no desired config: it cannot be judged
    content = client_for(viewer).get(panel_url(production)).content.decode()
    assert "The last sample could not be taken: no desired config yet" in content


def test_an_external_change_offers_adopt_and_overwrite_to_release_managers(
    edge, observed, release_manager, viewer
):
    edge.put_external(
        "production", '{"canary_percent":50,"canary_tag":"B2a","emergency_proxy":false}'
    )
    observe(observed.pk)
    content = client_for(release_manager).get(page_url(observed)).content.decode()
    assert "changed outside the dashboard" in content
    assert "Adopt the value in KV" in content and "Overwrite with 10%, tag B2a" in content
    # Asked on the server, with htmx and without it: the confirmation names the write.
    state = DriftState.objects.get(environment=observed)
    confirmation = client_for(release_manager).post(
        reverse("monitoring:overwrite", args=[observed.public_id]),
        {"reason": "on-call set it", "kv_hash": state.kv_hash, "expected_version": "1"},
    )
    assert "pix-immo-api / production: overwrite KV with 10%, tag B2a (version 2)" in (
        confirmation.content.decode()
    )
    viewer_content = client_for(viewer).get(page_url(observed)).content.decode()
    assert "Adopt the value in KV" not in viewer_content
    assert "A release manager decides" in viewer_content


# --- sampling on demand --------------------------------------------------------------------------


def test_sample_now_queues_one_sample(planned, release_manager):
    client = client_for(release_manager)
    response = client.post(sample_url(planned), headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"Sample of 100 fresh clients queued" in response.content
    client.post(sample_url(planned), headers={"HX-Request": "true"})  # a double click
    sample = CohortSample.objects.get(environment=planned)
    assert sample.trigger == "manual" and sample.requested_by == release_manager
    assert sample.state == "queued"
    response = client.post(sample_url(planned))
    assert response.status_code == 302 and response["Location"] == page_url(planned)


@pytest.mark.parametrize("person", ["viewer", "outsider"])
def test_viewers_cannot_start_a_sample(planned, request, person):
    user = request.getfixturevalue(person)
    assert client_for(user).post(sample_url(planned)).status_code == 403
    assert not CohortSample.objects.exists()


def test_sample_now_takes_only_post(planned, release_manager):
    assert client_for(release_manager).get(sample_url(planned)).status_code == 405
    response = Client().post(sample_url(planned))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- the checks history --------------------------------------------------------------------------


def make_checks(environment, ok=60, failed=15):
    now = timezone.now()
    rows = [
        HealthCheck(
            environment=environment,
            checked_at=now - timedelta(minutes=i),
            verdict="failed" if i % 5 == 0 and failed else "ok",
            reason="healthy",
            url=environment.qa_url,
        )
        for i in range(ok + failed)
    ]
    for row in rows:
        if row.verdict == "failed":
            row.reason = "database reports error: timeout"
    HealthCheck.objects.bulk_create(rows)


def test_the_history_is_paginated_newest_first(production, viewer):
    make_checks(production)
    client = client_for(viewer)
    first = client.get(checks_url(production))
    assert first.status_code == 200 and b"75 checks" in first.content
    assert b"page 1 of 2" in first.content and b"older" in first.content
    second = client.get(checks_url(production), {"page": 2}, headers={"HX-Request": "true"})
    assert b"<html" not in second.content and b"page 2 of 2" in second.content
    assert second.content.count(b"<tr class=") == 25


def test_the_history_filters_by_verdict(production, viewer):
    make_checks(production)
    response = client_for(viewer).get(checks_url(production), {"verdict": "failed"})
    assert b"15 checks with verdict" in response.content
    assert response.content.count(b'<tr class="verdict-failed">') == 15
    assert b'<tr class="verdict-ok">' not in response.content
    assert b"verdict=failed&amp;page" not in response.content  # one page only
    bogus = client_for(viewer).get(checks_url(production), {"verdict": "bogus"})
    assert bogus.status_code == 200 and b"75 checks" in bogus.content
