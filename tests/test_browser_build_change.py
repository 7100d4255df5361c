"""A deploy inside a phase window, on the phase page in real Chromium: the build change is shown
with the two choices, and each choice changes what the page recommends or which window it is.
The deployments are read from the edge stand-in's API by the observation, as on a schedule."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from monitoring.observation import observe
from rollout.models import AuditEntry, Environment, PhaseRun
from tests.support.rollouts import attest_all, observing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SCRIPT = "pix-immo-api"
OLD = "3f2a1b2c-aaaa-4aaa-8aaa-000000000001"
NEW = "8c1d4e5f-bbbb-4bbb-8bbb-000000000002"


@pytest.fixture
def window(edge, production_at_b2a, tech_lead):
    """B2a on version OLD, in effect since 25 h ago (its window has ended), all attested, and a
    new version deployed three hours into the window, read by an observation."""
    Environment.objects.filter(pk=production_at_b2a.pk).update(worker_script_name=SCRIPT)
    edge.deploy(SCRIPT, version_id=OLD)
    observe(production_at_b2a.pk)
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    deployed_at = run.in_effect_at + timedelta(hours=3)
    edge.deploy(
        SCRIPT,
        version_id=NEW,
        created_on=deployed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        message="hotfix upload retries",
        author_email="max@example.com",
    )
    observe(production_at_b2a.pk)
    return run


def test_the_phase_page_shows_the_build_change_and_keeping_the_window(
    live_server, open_page, window, release_manager
):
    page = open_page(release_manager)
    page.goto(f"{live_server.url}/phases/{window.public_id}/")

    change = page.locator("#build-changes .build-change")
    expect(change).to_contain_text("(3f2a1b2c → 8c1d4e5f)")
    expect(change).to_contain_text("deployed by max@example.com")
    expect(page.locator("#recommendation")).to_have_text("HOLD")
    build = page.locator("#criteria [data-criterion=build]")
    expect(build).to_have_attribute("data-status", "fail")
    expect(build).to_contain_text(f"({OLD} → {NEW})")

    keep = change.locator("form").filter(has=page.locator("button.keep-window"))
    keep.get_by_label("Why the evidence still holds").fill("the hotfix only touches logging")
    keep.get_by_role("button", name="Keep the window").click()

    expect(page.locator("#build-changes .build-change")).to_contain_text(
        "Window kept by rita", timeout=20_000
    )
    expect(page.locator("#build-changes")).to_contain_text("the hotfix only touches logging")
    expect(page.locator("#recommendation")).to_have_text("GO")
    expect(page.locator("#criteria [data-criterion=build]")).to_have_attribute(
        "data-status", "pass"
    )
    assert AuditEntry.objects.get(action="phase.build_kept").actor == release_manager


def test_restarting_the_window_opens_the_new_window_on_the_new_build(
    live_server, open_page, window, release_manager
):
    page = open_page(release_manager)
    page.goto(f"{live_server.url}/phases/{window.public_id}/")

    page.locator("button.restart-window").click()

    expect(page.locator("h1")).to_contain_text("window 2")
    restarted = PhaseRun.objects.get(window_number=2)
    assert page.url == f"{live_server.url}/phases/{restarted.public_id}/"
    expect(page.locator("code.build")).to_have_text(NEW)
    expect(page.locator("#phase-state")).to_have_text("Observing")
    expect(page.locator("#build-changes")).to_have_count(0)

    page.goto(f"{live_server.url}/phases/{window.public_id}/")
    expect(page.locator("#phase-state")).to_have_text("restarted from a new build")
    expect(page.locator("#build-changes")).to_contain_text("Window restarted by rita")
