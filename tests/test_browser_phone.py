"""On a phone (390 × 844) in Chromium: no page scrolls sideways, every table reflows into labelled
blocks with links and buttons large enough to tap, and the on-call engineer reaches and presses
the emergency stop. On a wide screen tables stay tables. Screenshots of each page go to
var/screenshots/ for a person to look at."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from integrations.kv_value import CanarySettings
from monitoring.models import HourlySummary
from monitoring.observation import observe
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PreviewRun
from rollout.services import audit
from tests.conftest import PASSWORD, client_for
from tests.support.browser import log_in
from tests.support.changes import change_config
from tests.support.rollouts import b2b_request, make_production_at_b2a
from tests.test_decisions import observing
from tests.test_pages_only_read import NOT_TRIED, NOT_TRIED_PREFIXES
from tests.test_refusals import routes, url_kwargs, world  # noqa: F401  (world is a fixture)

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


@pytest.fixture
def every_table_filled(world, release_manager):  # noqa: F811
    """One of every object a page can show, with a row in each of its tables."""
    production = world["production"]
    change_config(
        production,
        CanarySettings(5, "B2a", False),
        reason="lowered: " + "y" * 80,
        expected_version=3,
    )
    observe(production.pk)  # a health check and the drift state with its first event
    HourlySummary.objects.create(
        environment=production,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=9),
        checks=60,
        checks_failed=2,
        checks_warned=1,
        failure_reasons={"timeout": 2},
        warning_reasons={"slow": 1},
    )
    preview_run = world["preview_run"]
    preview_run.checks.update(state="passed", duration_ms=120, note="ok")
    preview_run.checks.filter(position=2).update(
        state="failed", reason="HTTP 503", evidence={"status": 503, "body": "z" * 300}
    )
    PreviewRun.objects.filter(pk=preview_run.pk).update(state="failed", finished_at=timezone.now())
    audit.record(
        action="config.percent_set",
        system="test",
        environment=production,
        reason="a long reason without spaces: " + "x" * 120,
    )
    return world


def html_pages(client, world):  # noqa: F811
    """(route name, URL) of every whole page a person opens (not the fragments htmx loads)."""
    for name, route in routes():
        if name in NOT_TRIED or route.startswith(NOT_TRIED_PREFIXES):
            continue
        url = reverse(name, kwargs=url_kwargs(name, route, world))
        response = client.get(url)
        page = response.status_code == 200 and response["Content-Type"].startswith("text/html")
        if page and b"<html" in response.content:
            yield name, url


# For each table of the page: whether it reflows, scrolls inside its box or sticks out of the
# screen; its first labelled cell (label, what is shown before the value, display); and the
# links and buttons in it smaller than a fingertip (44 x 44 px).
TABLES = """() => [...document.querySelectorAll("table")].map(table => {
  const cell = table.querySelector("td[data-label]");
  const small = [...table.querySelectorAll("a, button, summary")]
    .filter(target => target.getClientRects().length)
    .map(target => [target.textContent.trim(), target.getBoundingClientRect()])
    .filter(([, box]) => box.width < 44 || box.height < 44)
    .map(([text, box]) => `${text} ${Math.round(box.width)}x${Math.round(box.height)}`);
  return {
    name: table.className,
    reflows: table.classList.contains("reflow"),
    scrolls: table.scrollWidth > table.clientWidth,
    right: table.getBoundingClientRect().right,
    cell: cell && [cell.dataset.label, getComputedStyle(cell, "::before").content,
                   getComputedStyle(cell).display],
    small,
  };
})"""

# The pages the on-call engineer reads on a phone; each has at least one table (a decision's
# is on its phase's page).
READ_ON_A_PHONE = {
    "rollout:overview",
    "rollout:environment",
    "rollout:phase_run",
    "rollout:rollouts",
    "rollout:rollout",
    "rollout:audit",
    "rollout:preview_suite",
    "rollout:preview_run",
    "rollout:preview_report",
    "rollout:phase_report",
    "rollout:rollout_report",
    "monitoring:environment",
    "monitoring:checks",
    "metrics:environment",
    "metrics:alert_rules",
}


def test_on_a_phone_every_table_reflows_and_no_page_scrolls_sideways(
    chromium, live_server, every_table_filled, admin_user
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    urls = dict(html_pages(client_for(admin_user), every_table_filled))
    with_tables, labelled = set(), set()
    context, page = page_as(chromium, live_server, admin_user, PHONE)
    try:
        for name, url in urls.items():
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
            shot = name.replace(":", "-")
            page.screenshot(path=SCREENSHOTS / f"{shot}-390px.png", full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} is {width} px wide on a phone"
            for table in page.evaluate(TABLES):
                where = f"{name}: table {table['name']}"
                assert table["reflows"], f"{where} does not reflow"
                assert not table["scrolls"], f"{where} scrolls sideways inside its box"
                assert table["right"] <= PHONE["width"], f"{where} sticks out of the screen"
                assert not table["small"], f"{where}: too small to tap: {table['small']}"
                if table["cell"]:
                    label, shown, display = table["cell"]
                    assert shown == f'"{label}"' and display != "table-cell", where
                    labelled.add(name)
                with_tables.add(name)
    finally:
        context.close()
    assert READ_ON_A_PHONE <= with_tables, READ_ON_A_PHONE - with_tables
    assert READ_ON_A_PHONE <= labelled, READ_ON_A_PHONE - labelled


def test_on_a_wide_screen_tables_stay_tables(
    chromium, live_server, production_in_a_rollout, admin_user
):
    production, rollout = production_in_a_rollout
    context, page = page_as(chromium, live_server, admin_user, DESKTOP)
    try:
        for name, url in {
            "environment": f"/environments/{production.public_id}/",
            "audit": "/audit/",
            "rollout": f"/rollouts/{rollout.public_id}/",
        }.items():
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
            header = page.locator("table.reflow thead").first
            expect(header).to_be_visible()
            assert (
                page.evaluate("getComputedStyle(document.querySelector('table.reflow td')).display")
                == "table-cell"
            ), name
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
