"""The controls in real Chromium, against the live server, a real worker and the stand-in."""

import json
import re

import pytest
from playwright.sync_api import expect

from rollout.models import ConfigChange, DesiredConfig
from tests.conftest import NAMESPACES, configured_environment, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


@pytest.fixture
def production_in_effect(edge, worker):
    """Production with its initial desired config (10 %, B2a) written by the worker and in
    effect at the edge. Recorded once the worker runs: starting it empties the broker."""
    environment = configured_environment(edge)
    change = ConfigChange.objects.get(environment=environment, version=1)
    wait_for(lambda: ConfigChange.objects.get(pk=change.pk).state == "in_effect", timeout=20)
    return environment


def environment_url(live_server, environment):
    return f"{live_server.url}/environments/{environment.public_id}/"


def press_and_confirm(page, button, confirmation, outcome):
    """Press a control's button, read its confirmation, confirm and see the outcome."""
    page.click(button)
    expect(page.locator("#confirm-text")).to_have_text(confirmation)
    page.click("#confirm-button")
    expect(page.locator("#controls")).to_contain_text(outcome)


def test_an_increase_requested_approved_and_in_effect(
    live_server, open_page, production_in_effect, release_manager, tech_lead, edge
):
    rita = open_page(release_manager)
    rita.goto(environment_url(live_server, production_in_effect))
    rita.fill("#id_canary_percent", "25")
    rita.fill("#id_canary_tag", "B2b")
    rita.fill("#controls form[hx-post$='/percent/'] textarea[name=reason]", "B2a window passed")
    press_and_confirm(
        rita,
        "text=Review change…",
        "production: 10% → 25%, tag B2b",
        "waiting for a second person's approval",
    )
    expect(rita.locator("#controls")).not_to_contain_text("Approve")

    theo = open_page(tech_lead)
    theo.goto(environment_url(live_server, production_in_effect))
    press_and_confirm(
        theo,
        "button.approve",
        "Approve production: 10% → 25%, tag B2b",
        "Approved: 25%, tag B2b queued",
    )
    # The status fragment refreshes itself until the edge reports the change.
    expect(theo.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"v2.*in effect", re.S | re.I), timeout=20_000
    )
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 25


def test_the_emergency_stop_in_one_confirmation(
    live_server, open_page, production_in_effect, devops, edge
):
    dana = open_page(devops)
    dana.goto(environment_url(live_server, production_in_effect))
    press_and_confirm(
        dana, "#emergency-button", re.compile("EMERGENCY STOP"), "EMERGENCY STOP queued"
    )
    expect(dana.locator(".banner")).to_contain_text("EMERGENCY STOP ACTIVE", timeout=10_000)
    expect(dana.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"emergency stop.*in effect", re.S | re.I), timeout=20_000
    )
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["emergency_proxy"] is True


def test_a_viewer_sees_no_controls_and_a_crafted_post_is_refused(
    live_server, open_page, production_in_effect, viewer
):
    vera = open_page(viewer)
    vera.goto(environment_url(live_server, production_in_effect))
    expect(vera.locator("#environment-status")).to_contain_text("10%")
    assert vera.locator("#controls").count() == 0
    status = vera.evaluate(
        """async (url) => {
            const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
            const body = new URLSearchParams({reason: "x", confirmed: "true"});
            const response = await fetch(url, {method: "POST", body,
                headers: {"X-CSRFToken": token}});
            return response.status;
        }""",
        environment_url(live_server, production_in_effect) + "emergency/",
    )
    assert status == 403
    assert DesiredConfig.objects.get(environment=production_in_effect).emergency_proxy is False
