"""The overview shows, on each environment's card, what needs a person — drift, a pending
increase (with approve and reject for an approver), a decision or check-in due, a firing alert,
a failing health check, a change stuck before "in effect" — and nothing when all is well."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics.alerts import policy_for
from metrics.models import AlertRule, AlertState
from monitoring.models import DriftState, HealthCheck
from rollout.models import ConfigChange, DesiredConfig, PercentRequest
from tests.conftest import client_for, htmx_client_for, make_environment
from tests.support.rollouts import b2b_request, make_production_at_b2a, plan_for
from tests.test_decisions import observing

pytestmark = pytest.mark.django_db

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


def card(html: str, environment) -> str:
    """The overview card of ``environment``."""
    for section in html.split("<section")[1:]:
        if str(environment.public_id) in section.split("</h2>")[0]:
            return section
    raise AssertionError(f"no card for {environment}")


def overview_of(user, environment) -> str:
    return card(htmx_client_for(user).get("/").content.decode(), environment)


@pytest.fixture
def staging(edge):
    """A second, quiet environment beside production."""
    return make_environment(edge, service_name="pix-immo-web")


def drifting(environment):
    return DriftState.objects.create(
        environment=environment,
        kv_state=DriftState.KV.EXTERNAL,
        kv_hash="a" * 64,
        external_since=timezone.now(),
        detail="KV holds 5% B2a, desired is 15% B2a (version 3); it was changed outside",
    )


def failing_check(environment, verdict=HealthCheck.Verdict.FAILED, reason="status 503"):
    return HealthCheck.objects.create(
        environment=environment, verdict=verdict, reason=reason, url=environment.qa_url
    )


def firing_alert(environment):
    rule = AlertRule.objects.create(
        policy=policy_for(environment.service),
        name="native-5xx-high",
        kind=AlertRule.Kind.NATIVE_5XX,
        threshold=2,
        severity=AlertRule.Severity.CRITICAL,
    )
    return AlertState.objects.create(
        rule=rule, environment=environment, state=AlertState.State.FIRING
    )


def stuck_change(environment, minutes_ago=10):
    return ConfigChange.objects.create(
        environment=environment,
        version=3,
        kind=ConfigChange.Kind.PERCENT_CHANGE,
        requested_by_system="test",
        reason="up",
        after={"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
        state=ConfigChange.State.WRITTEN,
        requested_at=timezone.now() - timedelta(minutes=minutes_ago),
        written_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_nothing_is_shown_when_all_is_well(production_at_b2a, staging, viewer):
    DriftState.objects.create(environment=production_at_b2a, kv_state=DriftState.KV.IN_SYNC)
    failing_check(production_at_b2a, HealthCheck.Verdict.OK, "healthy")
    stuck_change(production_at_b2a, minutes_ago=0)  # just asked: propagating, not stuck
    for environment in (production_at_b2a, staging):
        assert "Needs a person" not in overview_of(viewer, environment)


@pytest.mark.parametrize(
    "condition, make, words, resolve",
    [
        (
            "drift",
            drifting,
            "Drift: Workers KV changed outside the dashboard",
            lambda drift: DriftState.objects.filter(pk=drift.pk).update(
                kv_state=DriftState.KV.IN_SYNC
            ),
        ),
        (
            "health failed",
            failing_check,
            "Health check failed: status 503",
            lambda check: failing_check(check.environment, HealthCheck.Verdict.OK, "healthy"),
        ),
        (
            "health warns",
            lambda environment: failing_check(
                environment, HealthCheck.Verdict.WARNING, "unknown key in X-Pix-Canary: zone"
            ),
            "Health check warns: unknown key in X-Pix-Canary: zone",
            lambda check: failing_check(check.environment, HealthCheck.Verdict.OK, "healthy"),
        ),
        (
            "alert",
            firing_alert,
            "Alert firing: native-5xx-high",
            lambda alert: AlertState.objects.filter(pk=alert.pk).update(
                state=AlertState.State.RESOLVED
            ),
        ),
        (
            "stuck change",
            stuck_change,
            "Version 3 (percent change, 10%, tag B2a) is not in effect yet: Written",
            lambda change: ConfigChange.objects.filter(pk=change.pk).update(
                state=ConfigChange.State.IN_EFFECT, in_effect_at=timezone.now()
            ),
        ),
        (
            "decision due",
            lambda environment: observing(environment, hours_ago=25, fill_logs=False),
            "the GO / NO-GO decision is due",
            lambda run: run.rollout.phase_runs.update(state="decided"),
        ),
        (
            "check-in due",
            lambda environment: observing(environment, hours_ago=3, fill_logs=False),
            "Check-in T+2 h is due",
            lambda run: run.check_ins.update(acknowledged_at=timezone.now()),
        ),
    ],
)
def test_each_condition_shows_on_its_environment_until_resolved(
    production_at_b2a, staging, viewer, condition, make, words, resolve
):
    made = make(production_at_b2a)
    production_card = overview_of(viewer, production_at_b2a)
    assert "Needs a person" in production_card and words in production_card, condition
    assert "Needs a person" not in overview_of(viewer, staging)
    resolve(made)
    assert "Needs a person" not in overview_of(viewer, production_at_b2a), condition


def test_a_check_in_missed_still_asks_for_its_acknowledgement(production_at_b2a, viewer):
    observing(production_at_b2a, hours_ago=3.5, fill_logs=False)
    assert "Check-in T+30 min was missed" in overview_of(viewer, production_at_b2a)


def test_a_pending_increase_is_approved_from_the_overview(
    production_at_b2a, staging, release_manager, tech_lead, viewer
):
    pending = b2b_request(production_at_b2a, release_manager)
    approve = f"/requests/{pending.public_id}/approve/"
    seen_by_viewer = overview_of(viewer, production_at_b2a)
    assert "Needs a person" in seen_by_viewer and pending.summary in seen_by_viewer
    assert approve not in seen_by_viewer and "Reject" not in seen_by_viewer
    seen_by_approver = overview_of(tech_lead, production_at_b2a)
    assert approve in seen_by_approver and "Reject" in seen_by_approver
    assert approve not in overview_of(tech_lead, staging)
    # Without JavaScript the whole page carries the same form.
    assert approve in card(client_for(tech_lead).get("/").content.decode(), production_at_b2a)

    client = client_for(tech_lead)
    shown = client.post(approve, {"back": "overview"}).content.decode()
    assert f"Approve {pending.summary}" in shown and 'name="back" value="overview"' in shown
    assert PercentRequest.objects.get().state == PercentRequest.State.PENDING
    confirmed = {"back": "overview", "confirmed": "true"}
    answer = client.post(approve, confirmed, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.headers["HX-Redirect"] == "/"
    pending.refresh_from_db()
    assert pending.state == PercentRequest.State.APPROVED
    assert DesiredConfig.objects.get(environment=production_at_b2a).canary_percent == 25
    page = client.get("/").content.decode()
    assert "Approved: 25%, tag B2b queued" in page
    assert approve not in page


def test_the_requester_cannot_approve_from_the_overview_either(
    production_at_b2a, admin_user, viewer
):
    pending = b2b_request(production_at_b2a, admin_user)
    approve = f"/requests/{pending.public_id}/approve/"
    assert approve not in overview_of(admin_user, production_at_b2a)
    answer = htmx_client_for(viewer).post(approve, {"back": "overview"})
    assert answer.status_code == 403
    assert PercentRequest.objects.get().state == PercentRequest.State.PENDING


def test_the_overview_costs_the_same_queries_for_one_environment_or_three(
    edge, release_manager, tech_lead
):
    """Polled every 2 s by everyone: its queries must not grow with the environments."""

    def troubled(service_name):
        environment = make_environment(edge, service_name=service_name)
        drifting(environment)
        failing_check(environment)
        firing_alert(environment)
        stuck_change(environment)
        b2b_request(environment, release_manager)
        return environment

    def queries():
        client = htmx_client_for(tech_lead)
        with CaptureQueriesContext(connection) as captured:
            html = client.get("/").content.decode()
        return len(captured), html.count("Needs a person")

    troubled("one")
    one, cards = queries()
    assert cards == 1
    troubled("two")
    troubled("three")
    three, cards = queries()
    assert cards == 3
    assert three == one


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_overview_in_chromium_shows_what_needs_a_person(
    chromium, live_server, edge, release_manager, tech_lead
):
    production = make_production_at_b2a(edge)
    drifting(production)
    b2b_request(production, release_manager)
    make_environment(edge, service_name="pix-immo-web")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        from tests.conftest import PASSWORD
        from tests.support.browser import log_in

        page = context.new_page()
        page.set_default_timeout(20_000)
        log_in(page, live_server.url, tech_lead.username, PASSWORD)
        needs = page.locator(".needs-a-person")
        assert needs.count() == 1
        assert "changed outside the dashboard" in needs.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "overview-needs-a-person.png", full_page=True)
        page.once("dialog", lambda dialog: dialog.accept())
        needs.get_by_role("button", name="Approve…").click()
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url(re.compile(r"/$"))
        page.get_by_text("Approved: 25%, tag B2b queued").wait_for()
        assert PercentRequest.objects.get().state == PercentRequest.State.APPROVED
    finally:
        context.close()


def test_the_overview_shows_each_rollouts_progress_in_the_same_queries_for_one_or_three(
    edge, viewer
):
    """The small progress (B2a → B2b → B2c) on every card with a rollout, read for all cards at
    once: the overview is polled every 2 s by everyone."""
    def with_rollout(service_name):
        environment = make_environment(edge, service_name=service_name)
        plan_for(environment)
        observing(environment, hours_ago=2, fill_logs=False)

    def overview():
        client = client_for(viewer)
        with CaptureQueriesContext(connection) as captured:
            html = client.get("/").content.decode()
        return len(captured), html

    with_rollout("one")
    one, html = overview()
    assert html.count('aria-label="Rollout progress"') == 1
    assert 'data-phase="B2a" data-state="current"' in html
    assert 'data-phase="B2b" data-state="next"' in html
    with_rollout("two")
    with_rollout("three")
    three, html = overview()
    assert html.count('aria-label="Rollout progress"') == 3
    assert three == one


def test_a_forged_return_address_is_refused_and_the_request_stays(
    production_at_b2a, release_manager, tech_lead
):
    pending = b2b_request(production_at_b2a, release_manager)
    answer = client_for(tech_lead).post(
        f"/requests/{pending.public_id}/approve/",
        {"back": "//evil.example/", "confirmed": "true"},
    )
    assert answer.status_code == 422
    assert "The page to return to was not accepted" in answer.content.decode()
    assert PercentRequest.objects.get().state == PercentRequest.State.PENDING
