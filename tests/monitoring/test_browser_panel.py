"""The live cohort panel in real Chromium against the live server and the edge stand-in: after
the split changes, the panel shows the new sample by itself, without a reload."""

import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from integrations.kv_value import CanarySettings
from monitoring import sampler
from monitoring.observation import observe
from rollout import kv_writer
from tests.monitoring.conftest import settle_writes, write_plan
from tests.support.changes import change_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def in_own_thread(function, *args):
    """Playwright's sync API keeps an event loop running in this thread, and the sampler runs
    its own under asyncio.run: give it a thread of its own (and its own database connection)."""
    result = {}

    def run():
        try:
            result["value"] = function(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result.get("value")


def take_sample(environment):
    sample, _ = sampler.queue_sample(environment, trigger="schedule")
    return in_own_thread(sampler.run_sample, sample.pk)


def test_the_panel_follows_a_change_of_the_split_by_itself(
    live_server, open_page, edge, production, viewer
):
    write_plan(production)  # 10 %
    assert take_sample(production).verdict == "pass"
    in_own_thread(observe, production.pk)

    page = open_page(viewer)
    page.goto(f"{live_server.url}/monitoring/environments/{production.public_id}/")
    panel = page.locator(f"#cohort-panel-{production.public_id}")
    expect(panel.locator("[data-plan]")).to_have_text("10%")
    expect(panel.locator(".components")).to_contain_text("database ok")
    page.evaluate("window.stillTheSamePage = true")

    # The release manager moves to 50 % (in KV and at the edge), and the schedule samples.
    change = change_config(
        production,
        CanarySettings(50, "B2b", False),
        reason="B2b",
        expected_version=1,
    )
    settle_writes(production)
    kv_writer.confirm(change.pk)
    edge.knobs(health={"production": {"database": "replica lag 30s"}})
    newest = take_sample(production)
    in_own_thread(observe, production.pk)
    assert newest.expected_percent == 50 and newest.verdict == "pass", newest.verdict_reason

    expect(panel.locator("[data-plan]")).to_have_text("50%", timeout=10_000)
    expect(panel.locator("[data-native]")).to_have_text(str(newest.native))
    expect(panel.locator("[data-share]")).to_have_text(f"{newest.native_share * 100:.1f}%")
    expect(panel.locator(".components")).to_contain_text("database error: replica lag 30s")
    expect(panel.locator("svg.history circle")).to_have_count(2)
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, no reload
