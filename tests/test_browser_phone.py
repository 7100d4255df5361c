"""On a phone (390 × 844) in Chromium: no page scrolls sideways, and the on-call engineer reaches
and presses the emergency stop. Screenshots of each page, phone and desktop, go to
var/screenshots/ for a person to look at."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from rollout.services import audit
from tests.conftest import PASSWORD
from tests.support.browser import log_in
from tests.support.rollouts import b2b_request, make_production_at_b2a
from tests.test_decisions import observing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 1000}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@pytest.fixture
def production_in_a_rollout(edge, release_manager):
    production = make_production_at_b2a(edge)
    run = observing(production)
    b2b_request(production, release_manager)
    audit.record(
        action="config.percent_set",
        system="test",
        environment=production,
        before={"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
        after={"canary_percent": 25, "canary_tag": "B2b", "emergency_proxy": False},
        reason="a long reason without spaces: " + "x" * 120,
    )
    return production, run.rollout


def page_as(chromium, live_server, user, viewport):
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, live_server.url, user.username, PASSWORD)
    return context, page


def pages(live_server, production, rollout):
    return {
        "overview": f"{live_server.url}/",
        "environment": f"{live_server.url}/environments/{production.public_id}/",
        "rollout": f"{live_server.url}/rollouts/{rollout.public_id}/",
        "audit": f"{live_server.url}/audit/",
    }


def test_no_page_is_wider_than_a_phone(chromium, live_server, production_in_a_rollout, admin_user):
    production, rollout = production_in_a_rollout
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("390px", PHONE), ("desktop", DESKTOP)):
        context, page = page_as(chromium, live_server, admin_user, viewport)
        try:
            for name, url in pages(live_server, production, rollout).items():
                page.goto(url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=SCREENSHOTS / f"{name}-{size}.png", full_page=True)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name} is {width} px wide at {size}"
        finally:
            context.close()


def test_on_a_phone_devops_reaches_and_presses_the_emergency_stop(
    chromium, live_server, production_in_a_rollout, devops
):
    production, _ = production_in_a_rollout
    context, page = page_as(chromium, live_server, devops, PHONE)
    try:
        page.goto(f"{live_server.url}/environments/{production.public_id}/")
        jump = page.locator("#jump-to-stop")
        expect(jump).to_be_in_viewport()  # near the top, without scrolling
        jump.click()
        page.fill(".emergency-control textarea[name=reason]", "5xx spike on native")
        expect(page.locator("#emergency-button")).to_be_in_viewport()
        page.click("#emergency-button")
        expect(page.locator("#confirm-text")).to_contain_text("EMERGENCY STOP")
        page.click("#confirm-button")
        expect(page.locator("#controls")).to_contain_text("EMERGENCY STOP queued")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
    change = ConfigChange.objects.get(environment=production, kind="emergency_stop")
    assert change.requested_by == devops and change.reason == "5xx spike on native"
    assert DesiredConfig.objects.get(environment=production).emergency_proxy is True
    assert AuditEntry.objects.filter(actor=devops, action__contains="emergency").exists()
