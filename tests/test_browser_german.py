"""A German-speaking team in real Chromium: the header's switcher, the environment page and the
emergency stop (NOT-AUS) with its confirmation, against the live server and a real worker; and
the way from B2a's sign-off to B2b's start, every page of it in German."""

import json
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from integrations.kv_value import CanarySettings
from metrics.models import MinuteBucket
from monitoring.observation import observe
from rollout.models import (
    PercentRequest,
    Preferences,
    PreflightAttestation,
    Rollout,
    Signature,
)
from tests import test_browser_controls, test_browser_signoff
from tests.conftest import NAMESPACES, make_environment
from tests.preview.test_preflight import complete
from tests.test_browser_controls import environment_url, press_and_confirm
from tests.test_browser_signoff import phase_url

# The controls' fixture: production with its first config written by a real worker, in effect.
production_in_effect = test_browser_controls.production_in_effect
# The sign-off's: B2a in effect since 25 h ago, its window ended, healthy metrics, no attestation.
run = test_browser_signoff.run

# What a page that is all German never says (words of English sentences, a time in UTC, the
# English names of roles and states). Names (an alert rule's "logs-not-delivering"), cohorts
# (native, proxy), GO / HOLD / NO-GO and the product's own terms (Build, Tag, Pre-Flight) read
# the same in both.
ENGLISH = re.compile(
    r"(?<![\w-])(the|and|with|by|at|of|is|to|for|not|yet|signature|evidence|requests|attested|"
    r"passed|restored|incidents?|window|UTC|Decided|Observing|Requested|tech lead|"
    r"release manager|healthy|reports|due|missed|upcoming|started|emergency stop|"
    r"critical alert|T\+\d+ (?:min|h))"
    r"(?![\w-])"  # a word, not part of a name like "logs-not-delivering"
)


def assert_all_german(page):
    # What the edge sent stays as it sent it, inside <code> (its status word, a component's
    # state, the KV value): our words around it are what must be German.
    text = page.locator("body").inner_text()
    for sent in page.locator("code").all_inner_texts():
        text = text.replace(sent, " ")
    found = ENGLISH.search(text)
    assert found is None, f"{page.url}: {text[max(0, found.start() - 80) : found.end() + 80]!r}"


pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_the_environment_page_and_the_emergency_stop_in_german(
    live_server,
    open_page,
    production_in_effect,
    devops,
    edge,
):
    dana = open_page(devops)
    dana.goto(environment_url(live_server, production_in_effect))
    expect(dana.locator("#controls h2")).to_have_text("Controls")

    dana.select_option("form.language select", "de")
    dana.click("form.language input[type=submit]")
    expect(dana.locator("html")).to_have_attribute("lang", "de")
    assert dana.url == environment_url(live_server, production_in_effect)
    assert Preferences.objects.get(user=devops).language == "de"
    expect(dana.locator("#controls h2")).to_have_text("Steuerung")
    expect(dana.locator("#emergency-button")).to_have_text("NOT-AUS")
    expect(dana.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"Anfangswert.*wirksam", re.S)
    )

    press_and_confirm(
        dana,
        "#emergency-button",
        "production: NOT-AUS — 100% des Traffics sofort zum Proxy",
        "NOT-AUS ganz vorne eingereiht",
    )
    expect(dana.locator(".banner")).to_have_text(
        "NOT-AUS AKTIV: 100% des Traffics gehen zum Proxy.", timeout=10_000
    )
    expect(dana.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"NOT-AUS.*wirksam", re.S), timeout=20_000
    )
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["emergency_proxy"] is True
    assert_all_german(dana)

    # The health check's reasons and the edge's own words, around what the edge sent.
    edge.knobs(health={"production": {"database": "timeout after 5s"}})
    observe(production_in_effect.pk)
    dana.goto(
        live_server.url + reverse("monitoring:environment", args=[production_in_effect.public_id])
    )
    expect(dana.locator("p.verdict-failed")).to_contain_text("database meldet error: timeout")
    assert_all_german(dana)
    dana.goto(live_server.url + reverse("monitoring:checks", args=[production_in_effect.public_id]))
    assert_all_german(dana)


def test_from_b2a_s_sign_off_to_b2b_s_start_in_german(
    live_server, open_page, run, edge, tech_lead, devops, release_manager
):
    production = run.rollout.environment
    preview = make_environment(edge, name="preview")
    # B2b's pre-flight but for one attestation, so the GO cannot start B2b by itself whatever
    # the hour: it waits for its start from the pre-flight page.
    complete(
        preview, production, release_manager, skip=(PreflightAttestation.Kind.ENGINEERS_AVAILABLE,)
    )
    PreflightAttestation.objects.exclude(note="").update(note="von Hand in #deployments gepostet")
    for person in (tech_lead, devops, release_manager):
        Preferences.objects.create(user=person, language="de")

    theo = open_page(tech_lead)
    theo.goto(phase_url(live_server, run))
    expect(theo.locator("#recommendation")).to_have_text("HOLD")
    for kind, note in (("upload_flow", "keine verwaisten Uploads"), ("team_agrees", "Stand-up")):
        form = theo.locator("#attest-form")
        form.locator("select[name=kind]").select_option(kind)
        form.locator("select[name=value]").select_option("yes")
        form.locator("input[name=note]").fill(note)
        form.locator("button[type=submit]").click()
        expect(theo.locator("#decision-success")).to_have_text("Bestätigung festgehalten.")
    expect(theo.locator("#recommendation")).to_have_text("GO")
    expect(theo.locator("#criteria [data-criterion=upload_flow]")).to_contain_text(
        re.compile(r"Upload-Ablauf gesund, bestätigt von theo am \d{4}-\d\d-\d\d \d\d:\d\d CES?T")
    )
    sign_go(theo, "tech_lead")
    expect(theo.locator("#decision-success")).to_have_text(
        "GO als Tech Lead unterschrieben: Es wird mit der zweiten Unterschrift wirksam."
    )
    expect(theo.locator("header")).to_contain_text("theo · Tech Lead")
    assert_all_german(theo)

    # Late logs change the figures before the second signature: the first no longer counts.
    MinuteBucket.objects.filter(
        environment=production, minute=run.in_effect_at, cohort="native"
    ).update(requests=80)
    dana = open_page(devops)
    dana.goto(phase_url(live_server, run))
    sign_go(dana, "devops")
    expect(dana.locator("#signatures li[data-signer=theo]")).to_contain_text(
        re.compile(
            r"zählt nicht mehr: die Belege haben sich vor der zweiten Unterschrift geändert: "
            r"Anfragen [\d.]+ → [\d.]+; Native-Anteil"
        )
    )
    assert_all_german(dana)

    theo.reload()
    sign_go(theo, "tech_lead")
    expect(theo.locator("#decision-success")).to_have_text(
        "GO ist von beiden unterschrieben und wirksam."
    )
    theo.reload()
    expect(theo.locator("#phase-state")).to_have_text("Entschieden")
    assert_all_german(theo)
    assert Rollout.objects.get(pk=run.rollout.pk).state == Rollout.State.AWAITING_NEXT
    assert Signature.objects.filter(invalidated_at__isnull=False).count() == 1

    rita = open_page(release_manager)
    rita.goto(f"{live_server.url}/environments/{production.public_id}/preflight/")
    expect(rita.locator("#preflight h2")).to_have_text("Pre-Flight: Phase B2b starten (25%)")
    assert_all_german(rita)
    engineers = rita.locator("li[data-item=engineers_available]")
    engineers.locator("input[name=names]").fill("@engineer1, @engineer2")
    engineers.locator("button[type=submit]").click()
    expect(rita.locator("li[data-item=engineers_available]")).to_have_class("item done")
    rita.locator("#preflight [name=reason]").fill("B2a bestanden, GO unterschrieben")
    override = rita.locator("#preflight [name=window_override_reason]")
    if override.count():  # outside Tuesday–Thursday 10:00–14:00 UTC, as the test may run
        override.fill("Test außerhalb des Fensters")
    rita.click("#start-phase-button")
    rita.click("#confirm-start-button")
    expect(rita.locator("#preflight .flash.ok")).to_contain_text(
        "production: 10% → 25%, Tag B2b angefragt: wartet auf die Genehmigung einer zweiten Person"
    )
    assert_all_german(rita)

    theo.goto(environment_url(live_server, production))
    assert_all_german(theo)
    press_and_confirm(
        theo,
        "button.approve",
        "production: 10% → 25%, Tag B2b genehmigen",
        "Genehmigt: 25%, Tag B2b eingereiht",
    )
    assert_all_german(theo)
    request = PercentRequest.objects.get(environment=production, to_tag="B2b")
    assert request.state == PercentRequest.State.APPROVED
    assert request.change.settings == CanarySettings(25, "B2b", False)


def sign_go(page, role):
    form = page.locator("#sign-form")
    form.locator("input[name=outcome][value=go]").check()
    form.locator("select[name=role]").select_option(role)
    form.locator("#sign-button").click()
