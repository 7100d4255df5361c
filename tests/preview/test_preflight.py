"""The production pre-flight: the deploy window, the checklist, attestations (who may give them,
what a bad one says, that each is audited), the #deployments announcement, and the start that
the server refuses until the checklist is complete and the window is open or overridden."""

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from outbox import notify
from outbox.models import Notification
from rollout.models import (
    AuditEntry,
    ConfigChange,
    DesiredConfig,
    PercentRequest,
    Phase,
    Preflight,
    PreflightAttestation,
    PreviewCheck,
    PreviewRun,
    Service,
)
from rollout.services import controls, preflight
from rollout.services import preview as preview_suite
from rollout.services.controls import approve_percent_request
from tests.conftest import client_for, htmx_client_for
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.django_db

Kind = PreflightAttestation.Kind
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TUESDAY_11 = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


# --- the deploy window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), True),  # Tuesday, opening minute
        (datetime(2026, 11, 24, 9, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 25, 12, 30, tzinfo=UTC), True),  # Wednesday
        (datetime(2026, 11, 26, 13, 59, 59, tzinfo=UTC), True),  # Thursday, last second
        (datetime(2026, 11, 26, 14, 0, tzinfo=UTC), False),  # closes at 14:00
        (datetime(2026, 11, 23, 12, 0, tzinfo=UTC), False),  # Monday
        (datetime(2026, 11, 27, 11, 0, tzinfo=UTC), False),  # Friday
        (datetime(2026, 11, 29, 11, 0, tzinfo=UTC), False),  # Sunday
        # 12:00 in Berlin (UTC+1 in winter) is 11:00 UTC: inside; the rule is in UTC.
        (datetime(2026, 11, 24, 12, 0, tzinfo=dt_timezone(timedelta(hours=1))), True),
        # 10:30 in UTC+2 is 08:30 UTC: outside.
        (datetime(2026, 11, 24, 10, 30, tzinfo=dt_timezone(timedelta(hours=2))), False),
    ],
)
def test_the_deploy_window_is_tuesday_to_thursday_10_to_14_utc(moment, inside):
    assert preflight.deploy_window(moment).open is inside


def test_outside_the_window_the_next_opening_is_named():
    window = preflight.deploy_window(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thursday
    assert window.next_opening == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # next Tuesday
    assert "Outside the deploy window" in window.text
    with timezone.override(UTC):
        assert "(Tuesday–Thursday, 10:00–14:00 UTC)" in window.text
        assert "opens Tuesday 2026-12-01 10:00 UTC." in window.text
    # Said in the reader's time zone, never mixed with UTC on their page.
    with timezone.override(ZoneInfo("Europe/Berlin")):
        assert "(Tuesday–Thursday, 11:00–15:00 CET)" in window.text
        assert "opens Tuesday 2026-12-01 11:00 CET." in window.text
    with timezone.override(ZoneInfo("Europe/Berlin")), translation.override("de"):
        assert "(Dienstag–Donnerstag, 11:00–15:00 CET)" in window.text
    inside = preflight.deploy_window(datetime(2026, 7, 14, 11, 0, tzinfo=UTC))  # summer
    with timezone.override(ZoneInfo("Europe/Berlin")):
        assert inside.text == (
            "Inside the deploy window (Tuesday–Thursday, 12:00–16:00 CEST); it closes at 16:00."
        )
    early = preflight.deploy_window(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))  # Wednesday
    assert early.next_opening == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_the_window_needs_an_aware_clock():
    with pytest.raises(ValueError):
        preflight.deploy_window(datetime(2026, 11, 24, 11, 0))


# --- setting up a complete checklist -------------------------------------------------------------


def passed_run(
    preview_adopted, person, *, build="deploy-1", finished_at=None, state="passed", deployment=None
):
    run = preview_suite.create_run(
        environment=preview_adopted, build=build, started_by=person, deployment=deployment
    )
    finished_at = finished_at or timezone.now()
    PreviewRun.objects.filter(pk=run.pk).update(
        state=state, started_at=finished_at - timedelta(seconds=5), finished_at=finished_at
    )
    PreviewCheck.objects.filter(run=run).update(state="passed", note="ok")
    if state == "failed":
        PreviewCheck.objects.filter(run=run, name="rate_limit").update(
            state="failed", reason="no 429"
        )
    return run


ATTESTATIONS = {
    Kind.TEAM_NOTIFIED: {"note": "posted in #deployments by hand"},
    Kind.RUNBOOK_REVIEWED: {"note": ""},
    Kind.ONCALL_CONFIRMED: {"names": ["@engineer1"]},
    Kind.ENGINEERS_AVAILABLE: {"names": ["@engineer1", "@engineer2"]},
}


def complete(preview_adopted, production_adopted, person, *, at=None, skip=()):
    """Everything the checklist asks for, given at ``at`` (default now)."""
    at = at or timezone.now()
    Service.objects.update(current_build="deploy-1")
    production_adopted.service.refresh_from_db()
    if "preview_suite" not in skip:
        passed_run(preview_adopted, person, finished_at=at - timedelta(minutes=30))
    phase = preflight.next_phase(production_adopted)
    record = preflight.open_preflight(production_adopted, phase)
    for kind, fields in ATTESTATIONS.items():
        if kind in skip:
            continue
        attestation = preflight.attest(preflight=record, kind=kind, person=person, **fields)
        PreflightAttestation.objects.filter(pk=attestation.pk).update(
            given_at=at - timedelta(minutes=10)
        )
    return record


def preflight_url(name, environment, *args):
    return reverse(f"rollout:{name}", args=[environment.public_id, *args])


def start_form(version=1, tag="B2b", reason="preview passed, team ready", override="", **extra):
    return {
        "expected_version": str(version),
        "tag": tag,
        "reason": reason,
        "window_override_reason": override,
        "confirmed": "true",
        **extra,
    }


# --- the next phase ------------------------------------------------------------------------------


def test_the_next_phase_follows_the_plan(production_adopted):
    assert preflight.next_phase(production_adopted).tag == "B2b", "B2a at 10% has started"
    DesiredConfig.objects.filter(environment=production_adopted).update(canary_percent=0)
    assert preflight.next_phase(production_adopted).tag == "B2a", "rolled back: B2a starts again"
    DesiredConfig.objects.filter(environment=production_adopted).update(canary_tag="other")
    assert preflight.next_phase(production_adopted).tag == "B2a"
    DesiredConfig.objects.filter(environment=production_adopted).update(
        canary_tag="B3", canary_percent=100
    )
    assert preflight.next_phase(production_adopted) is None


# --- the checklist -------------------------------------------------------------------------------


def test_the_page_lists_what_is_missing_and_disables_the_start(
    preview_adopted, production_adopted, viewer
):
    response = client_for(viewer).get(preflight_url("preflight", production_adopted))
    content = response.content.decode()
    assert response.status_code == 200
    assert "start phase B2b (25%)" in content
    assert "production: 10% → 25%, tag B2b" in content
    assert content.count('class="item todo"') == 5
    assert "pix-immo-api has no current build" in content
    assert 'id="deploy-window"' in content
    assert "swapped as a whole" not in content, "template comments stay out of the page"
    # A viewer sees neither attestation forms nor the start.
    assert "start-phase-button" not in content and "Confirm on-call" not in content
    assert not Preflight.objects.exists(), "looking creates nothing"


def test_a_release_manager_sees_the_start_disabled_until_complete(
    preview_adopted, production_adopted, admin_user
):
    content = (
        client_for(admin_user).get(preflight_url("preflight", production_adopted)).content.decode()
    )
    assert 'id="start-phase-button" disabled' in content
    assert "Start phase B2b (25%)" in content
    assert "Slack #deployments is not configured" in content
    complete(preview_adopted, production_adopted, admin_user)
    content = (
        client_for(admin_user).get(preflight_url("preflight", production_adopted)).content.decode()
    )
    assert content.count('class="item done"') == 5
    assert 'id="start-phase-button" disabled' not in content


def test_the_environment_page_loads_the_preflight(production_adopted, release_manager):
    content = client_for(release_manager).get(
        reverse("rollout:environment", args=[production_adopted.public_id])
    )
    assert preflight_url("preflight", production_adopted).encode() in content.content
    assert b'hx-trigger="load"' in content.content


@pytest.mark.parametrize(
    ("setup", "detail"),
    [
        ("none", "No preview suite has finished for build deploy-1"),
        ("failed", "The latest preview suite for build deploy-1 FAILED"),
        ("old", "more than 24 h ago: run it again"),
        ("other-build", "No preview suite has finished for build deploy-1"),
        ("no-build", "has no current build"),
    ],
)
def test_the_preview_item_needs_a_recent_pass_of_the_current_build(
    preview_adopted, production_adopted, release_manager, setup, detail
):
    complete(preview_adopted, production_adopted, release_manager, skip=("preview_suite",))
    now = timezone.now()
    if setup == "failed":
        passed_run(preview_adopted, release_manager, finished_at=now - timedelta(hours=2))
        passed_run(
            preview_adopted, release_manager, finished_at=now - timedelta(hours=1), state="failed"
        )
    elif setup == "old":
        passed_run(preview_adopted, release_manager, finished_at=now - timedelta(hours=25))
    elif setup == "other-build":
        passed_run(preview_adopted, release_manager, build="deploy-0")
    elif setup == "no-build":
        passed_run(preview_adopted, release_manager, build="")
        Service.objects.update(current_build="")
        production_adopted.service.refresh_from_db()
    checklist = preflight.evaluate(production_adopted, now=now)
    item = checklist.item("preview_suite")
    assert not item.done and detail in item.detail
    assert not checklist.complete


def test_an_old_attestation_no_longer_counts(preview_adopted, production_adopted, release_manager):
    complete(
        preview_adopted, production_adopted, release_manager, at=timezone.now() - timedelta(hours=5)
    )
    passed_run(preview_adopted, release_manager)
    checklist = preflight.evaluate(production_adopted, now=timezone.now())
    assert checklist.item("preview_suite").done
    stale = [item.key for item in checklist.items if not item.done]
    assert stale == [kind.value for kind in preflight.CHECKLIST_KINDS]
    assert "more than 4 h ago: give it again" in checklist.item(Kind.ONCALL_CONFIRMED).detail


# --- attestations --------------------------------------------------------------------------------

ALLOWED = {
    "release_manager": set(Kind.values),
    "admin_user": set(Kind.values),
    "devops": {Kind.ONCALL_CONFIRMED.value},
    "tech_lead": set(),
    "viewer": set(),
    "outsider": set(),
}
VALID = {
    Kind.TEAM_NOTIFIED.value: {"note": "told them at stand-up"},
    Kind.RUNBOOK_REVIEWED.value: {},
    Kind.ONCALL_CONFIRMED.value: {"names": "@engineer1"},
    Kind.ENGINEERS_AVAILABLE.value: {"names": "@engineer1, @engineer2"},
}


@pytest.mark.parametrize("person", sorted(ALLOWED))
@pytest.mark.parametrize("kind", sorted(preflight.CHECKLIST_KINDS))
def test_who_may_attest(request, production_adopted, person, kind):
    user = request.getfixturevalue(person)
    response = htmx_client_for(user).post(
        preflight_url("preflight_attest", production_adopted, kind), VALID[kind]
    )
    if kind in ALLOWED[person]:
        assert response.status_code == 200
        attestation = PreflightAttestation.objects.get()
        assert (attestation.kind, attestation.given_by) == (kind, user)
        entry = AuditEntry.objects.get(action="preflight.attested")
        assert entry.actor == user and entry.environment == production_adopted
        assert b"Recorded:" in response.content
    else:
        assert response.status_code == 403
        assert not PreflightAttestation.objects.exists()
        assert AuditEntry.objects.get(action="permission.denied").actor == user


def test_an_attestation_needs_post_and_a_login(production_adopted, release_manager):
    url = preflight_url("preflight_attest", production_adopted, "runbook_reviewed")
    assert client_for(release_manager).get(url).status_code == 405
    response = Client().post(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
    unknown = preflight_url("preflight_attest", production_adopted, "vibes")
    assert htmx_client_for(release_manager).post(unknown).status_code == 404
    assert not PreflightAttestation.objects.exists()


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("engineers_available", {"names": "@engineer1"}, "only @engineer1 given"),
        ("engineers_available", {"names": "ana, ANA"}, "Name two or more engineers"),
        ("oncall_confirmed", {"names": " , "}, "Name the person (or people) on call."),
        ("team_notified", {"note": ""}, "Say where and how the team was told"),
    ],
)
def test_a_bad_attestation_says_what_is_missing(
    production_adopted, release_manager, kind, data, message
):
    url = preflight_url("preflight_attest", production_adopted, kind)
    response = htmx_client_for(release_manager).post(url, data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not PreflightAttestation.objects.exists()
    assert not AuditEntry.objects.filter(action="preflight.attested").exists()


def test_names_are_recorded_as_given(production_adopted, devops):
    url = preflight_url("preflight_attest", production_adopted, "oncall_confirmed")
    htmx_client_for(devops).post(url, {"names": "@anna; @ben\n@anna"})
    assert PreflightAttestation.objects.get().names == ["@anna", "@ben"]
    detail = (
        preflight.evaluate(production_adopted, now=timezone.now()).item("oncall_confirmed").detail
    )
    assert "By dana at" in detail and "@anna, @ben" in detail


# --- the #deployments announcement ---------------------------------------------------------------


@pytest.fixture
def slack(settings):
    with WebhookReceiver() as receiver:
        settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = receiver.url
        yield receiver


def test_the_announcement_is_posted_and_then_counts(
    preview_adopted, production_adopted, release_manager, slack
):
    complete(preview_adopted, production_adopted, release_manager, skip=(Kind.TEAM_NOTIFIED,))
    client = htmx_client_for(release_manager)
    page = client.get(preflight_url("preflight", production_adopted)).content.decode()
    assert 'id="announce-button"' in page and "not configured" not in page

    response = client.post(preflight_url("preflight_announce", production_adopted))
    assert response.status_code == 200 and b"Announcement queued" in response.content
    attestation = PreflightAttestation.objects.get(kind=Kind.TEAM_NOTIFIED)
    notification = Notification.objects.get(public_id=attestation.notification_id)
    item = preflight.evaluate(production_adopted, now=timezone.now()).item("team_notified")
    assert not item.done and "on its way" in item.detail

    assert notify.deliver(notification.pk) is None
    item = preflight.evaluate(production_adopted, now=timezone.now()).item("team_notified")
    assert item.done and "Announcement posted by rita" in item.detail
    (message,) = slack.received
    payload = message["json"]
    assert "pix-immo-api B2b production start" in payload["text"]
    assert "25% native, 75% proxy" in payload["text"]
    fields = " ".join(field["text"] for field in payload["blocks"][1]["fields"])
    assert "@engineer1" in fields and "Build deploy-1 passed all checks" in fields
    assert "+48h" in fields, "next review after B2b's observation window"
    assert AuditEntry.objects.filter(action="preflight.attested", actor=release_manager).exists()


def test_without_slack_the_button_is_refused_and_a_note_will_do(
    production_adopted, release_manager
):
    response = htmx_client_for(release_manager).post(
        preflight_url("preflight_announce", production_adopted)
    )
    assert response.status_code == 409
    assert b"Slack #deployments is not configured" in response.content
    assert not PreflightAttestation.objects.exists()


def test_the_announcement_needs_post_a_login_and_the_role(
    production_adopted, devops, admin_user, slack
):
    url = preflight_url("preflight_announce", production_adopted)
    assert htmx_client_for(devops).post(url).status_code == 403
    assert AuditEntry.objects.get(action="permission.denied").actor == devops
    assert client_for(admin_user).get(url).status_code == 405
    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert not Notification.objects.exists() and not slack.received


# --- starting the phase --------------------------------------------------------------------------


def start_b2b(production, person, *, at=TUESDAY_11, **changed):
    """The start of B2b as a service call at ``at``: on version 1, no override of the deploy
    window; ``changed`` replaces any of these arguments."""
    arguments = {
        "environment": production,
        "tag": "B2b",
        "reason": "B2a passed",
        "expected_version": 1,
        "override_reason": "",
        "person": person,
        "now": at,
    }
    return preflight.start_phase(**(arguments | changed))


def test_the_server_refuses_a_start_with_an_incomplete_checklist(
    preview_adopted, production_adopted, release_manager
):
    complete(preview_adopted, production_adopted, release_manager, skip=(Kind.ONCALL_CONFIRMED,))
    response = htmx_client_for(release_manager).post(
        preflight_url("start_phase", production_adopted), start_form(override="urgent fix")
    )
    assert response.status_code == 409
    content = response.content.decode()
    assert "The pre-flight checklist is incomplete" in content
    assert "On-call (PagerDuty rotation) confirmed: Not yet given." in content
    assert DesiredConfig.objects.get(environment=production_adopted).version == 1
    assert not PercentRequest.objects.exists() and not ConfigChange.objects.exists()
    refused = AuditEntry.objects.get(action="preflight.start_refused")
    assert refused.actor == release_manager and refused.outcome == "refused"
    assert not Preflight.objects.filter(started_at__isnull=False).exists()


@pytest.mark.parametrize("missing", ["preview_suite", *preflight.CHECKLIST_KINDS])
def test_each_missing_item_blocks_the_start(
    preview_adopted, production_adopted, release_manager, missing
):
    complete(preview_adopted, production_adopted, release_manager, skip=(missing,), at=TUESDAY_11)
    with pytest.raises(preflight.StartRefused, match="checklist is incomplete"):
        start_b2b(production_adopted, release_manager)
    assert DesiredConfig.objects.get(environment=production_adopted).version == 1


def test_a_refused_start_outside_a_request_is_audited_by_the_service(
    preview_adopted, production_adopted, release_manager
):
    """An API or a command calling the start gets the same audit entry as the page."""
    complete(preview_adopted, production_adopted, release_manager, at=TUESDAY_11)
    with pytest.raises(preflight.StartRefused, match="not B3"):
        start_b2b(production_adopted, release_manager, tag="B3")
    with pytest.raises(controls.ConfigConflict):
        start_b2b(production_adopted, release_manager, expected_version=7)
    refusals = AuditEntry.objects.filter(action="preflight.start_refused").order_by("id")
    assert [(entry.actor, entry.outcome) for entry in refusals] == [
        (release_manager, "refused"),
        (release_manager, "refused"),
    ]
    assert "not B3" in refusals[0].detail and refusals[1].detail.startswith("Not started:")
    assert not Preflight.objects.filter(started_at__isnull=False).exists()
    assert not PercentRequest.objects.exists()


def test_outside_the_window_the_start_needs_an_override(
    preview_adopted, production_adopted, release_manager
):
    complete(preview_adopted, production_adopted, release_manager, at=MONDAY_NOON)
    with pytest.raises(preflight.StartRefused, match="Outside the deploy window"):
        start_b2b(production_adopted, release_manager, at=MONDAY_NOON, override_reason="  ")
    assert not PercentRequest.objects.exists()

    result = start_b2b(
        production_adopted,
        release_manager,
        at=MONDAY_NOON,
        override_reason="customer deadline on Tuesday",
    )
    assert isinstance(result, PercentRequest) and result.state == "pending"
    started = Preflight.objects.get()
    assert started.started_at == MONDAY_NOON and started.started_by == release_manager
    assert started.window_override_reason == "customer deadline on Tuesday"
    assert started.start_request == result and started.preview_run.passed
    entry = AuditEntry.objects.get(action="preflight.phase_started")
    assert "override: customer deadline on Tuesday" in entry.detail


def test_inside_the_window_no_override_is_needed(
    preview_adopted, production_adopted, release_manager
):
    complete(preview_adopted, production_adopted, release_manager, at=TUESDAY_11)
    result = start_b2b(production_adopted, release_manager)
    assert isinstance(result, PercentRequest)
    assert Preflight.objects.get().window_override_reason == ""


def test_a_complete_start_asks_to_confirm_then_waits_for_approval(
    preview_adopted, production_adopted, release_manager, tech_lead
):
    complete(preview_adopted, production_adopted, release_manager)
    client = htmx_client_for(release_manager)
    url = preflight_url("start_phase", production_adopted)
    confirm = client.post(url, start_form(confirmed="", override="ok to go"))
    assert confirm.status_code == 200
    assert "production: 10% → 25%, tag B2b" in confirm.content.decode()
    assert b"second person" in confirm.content and b'id="confirm-start-button"' in confirm.content
    assert not PercentRequest.objects.exists()

    response = client.post(url, start_form(override="ok to go"))
    assert response.status_code == 200
    assert b"waiting for a second person&#x27;s approval" in response.content
    pending = PercentRequest.objects.get()
    assert (pending.to_percent, pending.to_tag, pending.requested_by) == (
        25,
        "B2b",
        release_manager,
    )
    assert (
        "waits for a second person"
        in client.get(preflight_url("preflight", production_adopted)).content.decode()
    )

    approve_percent_request(percent_request=pending, approver=tech_lead)
    desired = DesiredConfig.objects.get(environment=production_adopted)
    assert (desired.canary_percent, desired.canary_tag) == (25, "B2b")
    # The next phase starts from a fresh checklist.
    checklist = preflight.evaluate(production_adopted, now=timezone.now())
    assert checklist.phase.tag == "B2c" and checklist.preflight is None
    assert not checklist.complete


def test_a_start_on_a_config_that_moved_on_is_refused(
    preview_adopted, production_adopted, release_manager
):
    complete(preview_adopted, production_adopted, release_manager)
    response = htmx_client_for(release_manager).post(
        preflight_url("start_phase", production_adopted), start_form(version=7, override="ok")
    )
    assert response.status_code == 409
    assert b"the config changed since you loaded this page" in response.content
    assert not PercentRequest.objects.exists()
    assert not Preflight.objects.filter(started_at__isnull=False).exists()


def test_a_start_names_the_next_phase(preview_adopted, production_adopted, release_manager):
    complete(preview_adopted, production_adopted, release_manager)
    response = htmx_client_for(release_manager).post(
        preflight_url("start_phase", production_adopted), start_form(tag="B3", override="ok")
    )
    assert response.status_code == 409
    assert b"The next phase is B2b (25%), not B3" in response.content


def test_the_start_needs_a_reason_post_and_the_role(
    preview_adopted, production_adopted, release_manager, devops
):
    complete(preview_adopted, production_adopted, release_manager)
    url = preflight_url("start_phase", production_adopted)
    bad = htmx_client_for(release_manager).post(url, start_form(reason="  ", override="ok"))
    assert bad.status_code == 422 and b"Give a reason" in bad.content
    assert client_for(release_manager).get(url).status_code == 405
    anonymous = Client().post(url, start_form(override="ok"))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert htmx_client_for(devops).post(url, start_form(override="ok")).status_code == 403
    assert not PercentRequest.objects.exists()


def test_preview_needs_no_preflight(preview_adopted, release_manager):
    assert (
        client_for(release_manager).get(preflight_url("preflight", preview_adopted)).status_code
        == 404
    )
    checklist = preflight.evaluate(preview_adopted, now=timezone.now())
    assert checklist.blocker == "Only production phases need a pre-flight."


def test_a_plan_without_a_next_phase_says_so(production_adopted, release_manager):
    Phase.objects.all().delete()
    content = (
        client_for(release_manager).get(preflight_url("preflight", production_adopted)).content
    )
    assert b"No next phase" in content and b"start-phase-button" not in content
