"""Chromium with JavaScript switched off: the forms alone stop, the links lead to the panels."""

from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from rollout.models import AuditEntry, ConfigChange
from tests.conftest import PASSWORD, configured_environment
from tests.support.browser import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@contextmanager
def without_javascript(chromium, live_server, person):
    """A page logged in as ``person`` in a browser that runs no script."""
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        log_in(page, live_server.url, person.username, PASSWORD)
        yield page
    finally:
        context.close()


def test_the_emergency_stop_without_javascript(chromium, live_server, edge, devops):
    production = configured_environment(edge)
    with without_javascript(chromium, live_server, devops) as page:
        page.goto(f"{live_server.url}/environments/{production.public_id}/")
        page.fill(".emergency-control textarea[name=reason]", "5xx spike on native")
        page.click("#emergency-button")
        expect(page.locator("#confirm-text")).to_contain_text("EMERGENCY STOP")
        page.click("#confirm-button")
        page.wait_for_url(f"{live_server.url}/environments/{production.public_id}/")
        expect(page.locator(".messages")).to_contain_text("EMERGENCY STOP queued")
    change = ConfigChange.objects.get(kind="emergency_stop")
    assert change.requested_by == devops and change.reason == "5xx spike on native"
    assert AuditEntry.objects.filter(actor=devops, action__contains="emergency").exists()


def test_the_panels_are_a_link_away_without_javascript(chromium, live_server, edge, viewer):
    production = configured_environment(edge)
    environment = f"{live_server.url}/environments/{production.public_id}/"
    with without_javascript(chromium, live_server, viewer) as page:
        page.goto(environment)
        page.click("#cohort-link")
        expect(page.locator(".cohort-panel")).to_be_visible()
        page.goto(environment)
        page.click("#metrics-link")
        expect(page.locator(".metrics-panels")).to_be_visible()
