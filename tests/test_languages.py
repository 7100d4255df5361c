"""The language of a page (a person's choice, else their browser's, else English) and of what a
team shares (a service's notifications and reports)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from rollout.models import AuditEntry, PhaseRun, Preferences
from rollout.notifications import announce_decision_due
from rollout.services.evidence import build
from tests.conftest import PASSWORD, client_for, htmx_client_for
from tests.support.rollouts import NOW, observing

pytestmark = pytest.mark.django_db

LANGUAGE = reverse("rollout:language")
LOGIN = reverse("login")


def _html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def test_english_is_the_default():
    page = Client().get(LOGIN)
    assert _html_lang(page) == "en-gb"
    assert "Log in</button>" in page.content.decode()


def test_a_browser_asking_for_german_gets_german_pages():
    page = Client(headers={"accept-language": "de-DE,de;q=0.9,en;q=0.5"}).get(LOGIN)
    assert _html_lang(page) == "de"
    assert "Anmelden</button>" in page.content.decode()
    english = Client(headers={"accept-language": "en-US,en;q=0.9"}).get(LOGIN)
    assert _html_lang(english) == "en-gb"


def test_a_person_chooses_their_language_in_the_header(viewer):
    client = client_for(viewer, headers={"accept-language": "en"})
    overview = reverse("rollout:overview")
    assert 'action="/language/"' in client.get(overview).content.decode()

    switched = client.post(LANGUAGE, {"language": "de", "next": overview})
    assert switched.status_code == 302 and switched["Location"] == overview
    assert Preferences.objects.get(user=viewer).language == "de"
    entry = AuditEntry.objects.get(action="preferences.changed")
    assert (entry.actor, entry.before, entry.after) == (
        viewer,
        {"language": ""},
        {"language": "de"},
    )
    page = client.get(overview).content.decode()
    assert "Übersicht" in page and "Deine Einstellungen" in page
    assert ">English</option>" in page, "each language is named in itself"

    # Another device, another browser language: the person's choice follows them.
    elsewhere = Client(headers={"accept-language": "en"})
    elsewhere.login(username=viewer.username, password=PASSWORD)
    assert _html_lang(elsewhere.get(overview)) == "de"


def test_an_unknown_language_is_refused_with_a_message_and_nothing_saved(viewer):
    client = client_for(viewer)
    answer = client.post(LANGUAGE, {"language": "tlh", "next": "/"}, follow=True)
    assert "tlh is not a language we offer." in answer.content.decode()
    assert not Preferences.objects.filter(user=viewer).exists()
    assert not AuditEntry.objects.filter(action="preferences.changed").exists()


def test_the_switcher_works_before_log_in_and_never_sends_elsewhere():
    client = Client()
    answer = client.post(LANGUAGE, {"language": "de", "next": "https://evil.example/"})
    assert answer.status_code == 302 and answer["Location"] == reverse("rollout:overview")
    assert answer.cookies["django_language"].value == "de"
    assert "Anmelden" in client.get(LOGIN).content.decode()


def test_get_is_not_allowed_on_the_switcher(viewer):
    assert client_for(viewer).get(LANGUAGE).status_code == 405


def test_dates_and_numbers_are_written_the_language_s_way():
    template = Template(
        '{% load times humanize %}{{ moment|when:"minutes" }} {{ n|intcomma }} {{ window|hours }}'
    )
    context = Context(
        {
            "moment": datetime(2026, 12, 3, 13, 5, tzinfo=UTC),
            "n": 1234567,
            "window": timedelta(minutes=90),
        }
    )
    with translation.override("de"):
        german = template.render(context)
    with translation.override("en-gb"):
        english = template.render(context)
    assert ">03 Dez 14:05</time> 1.234.567 1,5 h" in german
    assert ">03 Dec 14:05</time> 1,234,567 1.5 h" in english


def test_a_refusal_speaks_the_person_s_language(production_configured, devops):
    Preferences.objects.create(user=devops, language="de")
    url = reverse("rollout:lift_emergency", args=[production_configured.public_id])
    data = {"reason": "all clear", "expected_version": "1", "confirmed": "true"}
    refused = htmx_client_for(devops).post(url, data)
    assert refused.status_code == 409
    assert "Der NOT-AUS ist auf production nicht aktiv." in refused.content.decode()


def test_notifications_speak_the_service_s_language_not_the_actor_s(production_at_b2a, settings):
    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/hooks/deployments"
    run = observing(production_at_b2a)
    service = production_at_b2a.service
    with translation.override("de"):
        english = announce_decision_due(run)
    assert "the GO / NO-GO decision is due" in english.subject
    english.delete()  # the same event is posted once
    service.language = "de"
    service.save()
    german = announce_decision_due(PhaseRun.objects.get(pk=run.pk))
    assert "die GO-/NO-GO-Entscheidung ist fällig" in german.subject
    assert "Entscheidung öffnen" in str(german.payload)
    assert translation.get_language() == "en-gb", "the service's language does not leak"


def test_the_markdown_report_speaks_the_service_s_language(production_at_b2a, viewer):
    run = observing(production_at_b2a)
    production_at_b2a.service.language = "de"
    production_at_b2a.service.save()
    report = client_for(viewer).get(reverse("rollout:phase_report_markdown", args=[run.public_id]))
    text = report.content.decode()
    assert report.status_code == 200
    assert "## Metrik-Übersicht" in text and "Noch keine Entscheidung wirksam." in text
    # Every sentence in the team's language, the kept ones too, and its times in UTC.
    assert "— Native-Traffic 57.600 Anfragen ≥ 500" in text
    assert "## Vorfälle\n\nKeine.\n" in text
    assert " CET" not in text and "requests" not in text


def test_the_evidence_and_its_digest_do_not_depend_on_the_reader_s_language(
    production_at_b2a, tech_lead
):
    run = observing(production_at_b2a)
    with translation.override("de"):
        german = build(run, NOW)
    english = build(run, NOW)
    assert german.digest == english.digest
    assert german.document == english.document
    Preferences.objects.create(user=tech_lead, language="de")
    page = client_for(tech_lead).get(reverse("rollout:phase_run", args=[run.public_id]))
    text = page.content.decode()
    assert "Native-Traffic" in text and "Unterschriften" in text
