"""An /api/qa answer that works but carries something the contract does not know is a *warning*,
with its reason in words: on the health check, the environment page, the checks history, the
hourly summaries and the preview suite's structure check alike (``edge_qa.qa_warnings``)."""

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from monitoring.models import HealthCheck, HourlySummary
from monitoring.observation import observe
from monitoring.retention import prune
from rollout.models import Preferences
from rollout.services import preview as preview_suite
from tests.conftest import client_for
from tests.monitoring.conftest import misbehaving_target

pytestmark = pytest.mark.django_db

UNEXPECTED = [
    ("/unknown-key", "X-Pix-Canary has an unknown key 'region' (=fra)"),
    ("/unknown-reason", "X-Pix-Canary has an unknown reason 'geo'"),
    ("/extra-component", "health reports a component the contract does not name: 'cache' is 'ok'"),
    (
        "/cookie-not-secure",
        "the _canary_cohort cookie is not Secure (a browser would send it over plain HTTP)",
    ),
]
# The same, as a German page says them.
GERMAN = {
    "/unknown-key": "X-Pix-Canary hat einen unbekannten Schlüssel 'region' (=fra)",
    "/unknown-reason": "X-Pix-Canary hat einen unbekannten Grund 'geo'",
    "/extra-component": "health meldet eine Komponente, die der Vertrag nicht nennt: 'cache' ist "
    "'ok'",
    "/cookie-not-secure": "das _canary_cohort-Cookie ist nicht Secure (ein Browser würde es über "
    "unverschlüsseltes HTTP senden)",
}


def probed(environment, misbehaving, path):
    environment.qa_url = misbehaving.url(path)
    environment.save()
    return observe(environment.pk).check


@pytest.mark.parametrize("path, warning", UNEXPECTED, ids=[path for path, _ in UNEXPECTED])
def test_each_unexpected_thing_is_a_warning_with_its_reason(misbehaving, production, path, warning):
    check = probed(production, misbehaving, path)
    assert check.verdict == "warning", check.problems
    assert check.reason == warning and check.warnings == [warning]
    assert check.problems == []
    check.refresh_from_db()
    assert check.reason_words == warning and check.warning_words == [warning]
    with translation.override("de"):
        assert check.reason_words == GERMAN[path] and check.warning_words == [GERMAN[path]]


def test_a_normal_answer_stays_ok(misbehaving, production):
    check = probed(production, misbehaving, "/ok")
    assert check.verdict == "ok" and check.reason == "healthy" and check.warnings == []


def test_the_edge_standins_answer_is_ok(edge, planned):
    check = observe(planned.pk).check
    assert check.verdict == "ok" and check.warnings == []


def test_a_standin_cookie_without_secure_is_a_warning(edge, planned):
    edge.knobs(cookie_attributes={"production": "Max-Age=86400; Path=/; HttpOnly; SameSite=None"})
    check = observe(planned.pk).check
    assert check.verdict == "warning"
    assert check.reason.startswith("the _canary_cohort cookie is not Secure")


def test_a_failure_wins_over_a_warning_and_keeps_it(misbehaving, production):
    check = probed(production, misbehaving, "/unknown-reason")
    assert check.verdict == "warning"
    failing = probed(production, misbehaving, "/degraded")
    assert failing.verdict == "failed" and failing.reason == "status is 'degraded'"


def structure_check(environment, misbehaving, path):
    target = misbehaving_target(environment, misbehaving, path)
    return preview_suite.check_qa_structure(target, time.monotonic() + 10)


ROUTED_AS_SAMPLED = [(path, warning) for path, warning in UNEXPECTED if path != "/unknown-reason"]


@pytest.mark.parametrize(
    "path, warning", ROUTED_AS_SAMPLED, ids=[path for path, _ in ROUTED_AS_SAMPLED]
)
def test_the_structure_check_passes_with_the_same_warning(misbehaving, production, path, warning):
    result = structure_check(production, misbehaving, path)
    assert result.passed, result.reason
    assert result.evidence["warnings"] == [warning]
    assert result.note == f"Works, with 1 warning: {warning}"


def test_the_structure_check_still_expects_a_fresh_client_to_be_sampled(misbehaving, production):
    # An unknown reason is only a warning; that a fresh client was not sampled is the failure.
    result = structure_check(production, misbehaving, "/unknown-reason")
    assert not result.passed
    assert result.reason.startswith("a fresh client (no cookie, no X-Canary header) came back")
    assert result.evidence["warnings"] == ["X-Pix-Canary has an unknown reason 'geo'"]


def test_the_environment_page_and_the_history_show_the_warning(misbehaving, production, viewer):
    check = probed(production, misbehaving, "/unknown-key")
    client = client_for(viewer)
    page = client.get(reverse("monitoring:environment", args=[production.public_id]))
    text = page.content.decode()
    assert 'class="verdict verdict-warning warn"' in text
    assert "<strong>WARNING</strong> X-Pix-Canary has an unknown key &#x27;region&#x27;" in text
    history = client.get(reverse("monitoring:checks", args=[production.public_id]))
    assert '<tr class="verdict-warning">' in history.content.decode()
    assert check.reason.replace("'", "&#x27;") in history.content.decode()
    only = client.get(
        reverse("monitoring:checks", args=[production.public_id]), {"verdict": "warning"}
    )
    assert b"1 check with verdict" in only.content


def test_the_pages_say_a_check_s_reasons_in_their_reader_s_language(
    misbehaving, production, viewer
):
    Preferences.objects.create(user=viewer, language="de")
    client = client_for(viewer)
    probed(production, misbehaving, "/unknown-key")
    failed = probed(production, misbehaving, "/component-error")
    assert failed.reason == "database reports error: connection refused"

    page = client.get(reverse("monitoring:environment", args=[production.public_id]))
    text = page.content.decode()
    assert "<strong>FEHLGESCHLAGEN</strong> database meldet error: connection refused" in text
    # What the edge sent stays as it sent it, marked as such.
    assert "<strong>database</strong> <code>error: connection refused</code>" in text
    history = client.get(reverse("monitoring:checks", args=[production.public_id]))
    text = history.content.decode()
    assert "database meldet error: connection refused" in text
    assert "X-Pix-Canary hat einen unbekannten Schlüssel &#x27;region&#x27; (=fra)" in text
    assert not re.search(r"\b(reports|unknown key|healthy)\b", text)
    overview = client.get(reverse("rollout:overview")).content.decode()
    assert ": database meldet error: connection refused" in overview
    environment = client.get(reverse("rollout:environment", args=[production.public_id]))
    assert "meldet <code>healthy</code>" in environment.content.decode()

    # An edge that cannot be read, on the environment page.
    probed(production, misbehaving, "/slow")
    environment = client.get(reverse("rollout:environment", args=[production.public_id]))
    assert '<span class="error">Zeitüberschreitung</span>' in environment.content.decode()

    # A check from before the words were kept shows its reason as kept.
    HealthCheck.objects.filter(pk=failed.pk).update(words={})
    failed.refresh_from_db()
    with translation.override("de"):
        assert failed.reason_words == "database reports error: connection refused"


def test_hourly_summaries_count_warnings_apart_from_failures(production, viewer, settings):
    settings.CHECK_RETENTION_DAYS = 7
    hour = (timezone.now() - timedelta(days=8)).replace(minute=0, second=0, microsecond=0)
    for minute, verdict, reason in [
        (1, "ok", "healthy"),
        (2, "warning", "X-Pix-Canary has an unknown key 'region' (=fra)"),
        (3, "warning", "X-Pix-Canary has an unknown key 'region' (=fra)"),
        (4, "failed", "timed out"),
    ]:
        HealthCheck.objects.create(
            environment=production,
            checked_at=hour + timedelta(minutes=minute),
            verdict=verdict,
            reason=reason,
            url=production.qa_url,
        )
    prune()
    summary = HourlySummary.objects.get(environment=production)
    assert (summary.checks, summary.checks_failed, summary.checks_warned) == (4, 1, 2)
    assert summary.failure_reasons == {"timed out": 1}
    assert summary.warning_reasons == {"X-Pix-Canary has an unknown key 'region' (=fra)": 2}
    page = client_for(viewer).get(reverse("monitoring:checks", args=[production.public_id]))
    text = page.content.decode()
    assert '<td class="summary-warnings" data-label="Warnings">2</td>' in text
    assert "warning: X-Pix-Canary has an unknown key &#x27;region&#x27; (=fra) (2)" in text
