"""The guarded controls: who may click what, what a bad click says, and what gets written."""

import pytest
from django.test import Client
from django.urls import reverse

from integrations.kv_value import CanarySettings
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PercentRequest
from tests.conftest import client_for, htmx_client_for, make_environment
from tests.support.rollouts import b2b_request

pytestmark = pytest.mark.django_db

B2A = CanarySettings(10, "B2a", False)


def url(name, environment):
    return reverse(f"rollout:{name}", args=[environment.public_id])


def percent_form(version=1, percent="25", tag="B2b", reason="phase B2b", confirmed="true"):
    return {
        "canary_percent": percent,
        "canary_tag": tag,
        "reason": reason,
        "expected_version": str(version),
        "confirmed": confirmed,
    }


CONFIRMED = {"confirmed": "true"}


def desired(environment):
    return DesiredConfig.objects.get(environment=environment)


# --- the permission matrix --------------------------------------------------------------------

ENDPOINTS = {
    "set_percent": lambda env: (url("set_percent", env), percent_form(percent="5")),
    "rollback": lambda env: (
        url("rollback", env),
        {"reason": "r", "expected_version": "1", "confirmed": "true"},
    ),
    "emergency_stop": lambda env: (
        url("emergency_stop", env),
        {"reason": "r", "confirmed": "true"},
    ),
    "lift_emergency": lambda env: (
        url("lift_emergency", env),
        {"reason": "r", "expected_version": "1", "confirmed": "true"},
    ),
    "connect": lambda env: (url("connect", env), {}),
    "write_initial": lambda env: (
        url("write_initial", env),
        {"canary_percent": "1", "canary_tag": "B", "reason": "r"},
    ),
}
ALLOWED = {
    "viewer": set(),
    "outsider": set(),
    "release_manager": {"set_percent", "rollback", "emergency_stop", "lift_emergency"},
    "tech_lead": set(),
    "devops": {"rollback", "emergency_stop", "lift_emergency"},
    "admin_user": set(ENDPOINTS),
}


@pytest.mark.parametrize("person", sorted(ALLOWED))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_permission_matrix(request, production_configured, person, endpoint):
    user = request.getfixturevalue(person)
    path, data = ENDPOINTS[endpoint](production_configured)
    versions_before = desired(production_configured).version
    changes_before = ConfigChange.objects.count()
    response = htmx_client_for(user).post(path, data)
    if endpoint in ALLOWED[person]:
        assert response.status_code != 403
    else:
        assert response.status_code == 403
        assert desired(production_configured).version == versions_before
        assert ConfigChange.objects.count() == changes_before
        denied = AuditEntry.objects.filter(action="permission.denied").latest("id")
        assert denied.actor == user and denied.outcome == "refused"


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_control_refuses_a_post_without_csrf_token(
    production_configured, admin_user, endpoint
):
    path, data = ENDPOINTS[endpoint](production_configured)
    response = htmx_client_for(admin_user, enforce_csrf_checks=True).post(path, data)
    assert response.status_code == 403
    assert desired(production_configured).version == 1


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_control_refuses_get(production_configured, admin_user, endpoint):
    path, _ = ENDPOINTS[endpoint](production_configured)
    assert client_for(admin_user).get(path).status_code == 405


@pytest.mark.parametrize("endpoint", ["set_percent", "rollback", "emergency_stop"])
def test_anonymous_clicks_are_sent_to_log_in(production_configured, endpoint):
    path, data = ENDPOINTS[endpoint](production_configured)
    response = Client().post(path, data)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert desired(production_configured).version == 1


def test_approvals_need_the_approver_role(
    production_configured, release_manager, second_release_manager, viewer, devops
):
    htmx_client_for(release_manager).post(url("set_percent", production_configured), percent_form())
    pending = PercentRequest.objects.get()
    approve = reverse("rollout:approve_request", args=[pending.public_id])
    for person in (second_release_manager, viewer, devops):
        assert htmx_client_for(person).post(approve).status_code == 403
    reject = reverse("rollout:reject_request", args=[pending.public_id])
    assert htmx_client_for(viewer).post(reject).status_code == 403
    pending.refresh_from_db()
    assert pending.state == "pending" and desired(production_configured).version == 1


# --- setting the percent ------------------------------------------------------------------------


def test_the_first_post_asks_for_confirmation_naming_the_change(
    production_configured, release_manager
):
    response = htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form(confirmed="")
    )
    assert response.status_code == 200
    assert "production: 10% → 25%, tag B2b" in response.content.decode()
    assert b"second person" in response.content
    assert desired(production_configured).version == 1 and not PercentRequest.objects.exists()


def test_lowering_applies_at_once_and_warns_about_sticky_cookies(
    production_configured, release_manager
):
    client = htmx_client_for(release_manager)
    confirm = client.post(
        url("set_percent", production_configured),
        percent_form(percent="5", tag="B2a", confirmed=""),
    )
    assert "production: 10% → 5%, tag B2a" in confirm.content.decode()
    assert b"native cookie" in confirm.content
    response = client.post(
        url("set_percent", production_configured), percent_form(percent="5", tag="B2a")
    )
    assert response.status_code == 200 and b"Queued" in response.content
    assert (
        desired(production_configured).version,
        desired(production_configured).canary_percent,
    ) == (2, 5)
    change = ConfigChange.objects.get(version=2)
    assert change.requested_by == release_manager and change.approved_by is None


def test_raising_waits_for_a_second_person(production_configured, release_manager, tech_lead):
    response = htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form()
    )
    assert b"waiting for a second person" in response.content
    assert desired(production_configured).version == 1
    pending = PercentRequest.objects.get()
    approve = reverse("rollout:approve_request", args=[pending.public_id])
    response = htmx_client_for(tech_lead).post(approve, {"note": "metrics fine", **CONFIRMED})
    assert response.status_code == 200 and b"Approved" in response.content
    change = ConfigChange.objects.get(version=2)
    assert (change.requested_by, change.approved_by) == (release_manager, tech_lead)
    assert desired(production_configured).canary_percent == 25
    pending.refresh_from_db()
    assert pending.state == "approved" and pending.change == change
    assert AuditEntry.objects.filter(action="approval.approved", actor=tech_lead).exists()


def test_nobody_approves_their_own_request(production_configured, admin_user):
    client = htmx_client_for(admin_user)
    client.post(url("set_percent", production_configured), percent_form())
    pending = PercentRequest.objects.get()
    response = client.post(reverse("rollout:approve_request", args=[pending.public_id]), CONFIRMED)
    assert response.status_code == 409
    assert b"cannot approve your own request" in response.content
    assert desired(production_configured).version == 1
    assert AuditEntry.objects.filter(action="approval.refused").count() == 1


def test_a_change_closes_the_pending_raise_as_stale_everywhere(
    production_configured, release_manager, tech_lead, devops
):
    htmx_client_for(release_manager).post(url("set_percent", production_configured), percent_form())
    pending = PercentRequest.objects.get()
    approve = reverse("rollout:approve_request", args=[pending.public_id])
    # Meanwhile the emergency stop writes version 2: the raise was asked on version 1.
    stopped = htmx_client_for(devops).post(
        url("emergency_stop", production_configured), {"reason": "5xx", **CONFIRMED}
    )
    assert "Closed by the latest change" in stopped.content.decode()
    pending.refresh_from_db()
    stop = ConfigChange.objects.get(version=2)
    assert (pending.state, pending.superseded_by, pending.decided_by) == ("stale", stop, None)
    closed = AuditEntry.objects.get(action="approval.superseded")
    assert (closed.actor, closed.environment) == (devops, production_configured)
    assert "version 2 (emergency_stop)" in closed.detail and closed.object_id == str(
        pending.public_id
    )

    approver = client_for(tech_lead)
    assert approve not in approver.get(reverse("rollout:overview")).content.decode()
    page = approver.get(url("environment", production_configured)).content.decode()
    assert approve not in page
    assert f"{pending.summary}, asked by rita: closed as stale when version 2" in page

    response = htmx_client_for(tech_lead).post(approve, CONFIRMED)
    assert response.status_code == 409
    assert "closed as stale: version 2 (emergency stop)" in response.content.decode()
    assert AuditEntry.objects.filter(action="approval.refused").count() == 1
    assert desired(production_configured).canary_percent == 0


def test_approving_one_raise_closes_the_other(
    production_configured, release_manager, admin_user, tech_lead
):
    htmx_client_for(release_manager).post(url("set_percent", production_configured), percent_form())
    htmx_client_for(admin_user).post(
        url("set_percent", production_configured), percent_form(percent="50", reason="faster")
    )
    to_25, to_50 = PercentRequest.objects.order_by("to_percent")
    htmx_client_for(tech_lead).post(
        reverse("rollout:approve_request", args=[to_25.public_id]), CONFIRMED
    )
    to_25.refresh_from_db()
    to_50.refresh_from_db()
    change = ConfigChange.objects.get(version=2)
    assert (to_25.state, to_25.change, to_25.superseded_by) == ("approved", change, None)
    assert (to_50.state, to_50.superseded_by) == ("stale", change)


def test_a_request_left_pending_on_an_old_version_is_refused_as_stale(
    production_configured, release_manager, tech_lead
):
    # A raise still pending on a version that is no longer current (left from before changes
    # closed them): the approval marks it stale instead of applying it.
    pending = b2b_request(production_configured, release_manager, base_version=0)
    response = htmx_client_for(tech_lead).post(
        reverse("rollout:approve_request", args=[pending.public_id]), CONFIRMED
    )
    assert response.status_code == 409
    assert b"config changed since this was requested" in response.content
    pending.refresh_from_db()
    assert pending.state == "stale"
    assert desired(production_configured).canary_percent == 10


def test_an_approved_request_cannot_be_approved_twice(
    production_configured, release_manager, tech_lead, admin_user
):
    htmx_client_for(release_manager).post(url("set_percent", production_configured), percent_form())
    pending = PercentRequest.objects.get()
    approve = reverse("rollout:approve_request", args=[pending.public_id])
    assert htmx_client_for(tech_lead).post(approve, CONFIRMED).status_code == 200
    second = htmx_client_for(admin_user).post(approve, CONFIRMED)
    assert second.status_code == 409 and b"already approved" in second.content
    assert ConfigChange.objects.filter(kind="percent_change").count() == 1


def test_the_requester_can_cancel_and_an_approver_can_reject(
    production_configured, release_manager, tech_lead
):
    client = htmx_client_for(release_manager)
    client.post(url("set_percent", production_configured), percent_form())
    first = PercentRequest.objects.get()
    client.post(reverse("rollout:reject_request", args=[first.public_id]))
    first.refresh_from_db()
    assert first.state == "cancelled"
    client.post(url("set_percent", production_configured), percent_form(reason="again"))
    second = PercentRequest.objects.get(state="pending")
    htmx_client_for(tech_lead).post(
        reverse("rollout:reject_request", args=[second.public_id]),
        {"note": "wait for the weekend to pass"},
    )
    second.refresh_from_db()
    assert second.state == "rejected" and second.decided_by == tech_lead
    assert desired(production_configured).version == 1


def test_a_double_submit_writes_once(production_configured, release_manager):
    client = htmx_client_for(release_manager)
    data = percent_form(percent="5", tag="B2a")
    first = client.post(url("set_percent", production_configured), data)
    second = client.post(url("set_percent", production_configured), data)
    assert first.status_code == 200
    assert (
        second.status_code == 409 and b"config changed since you loaded this page" in second.content
    )
    assert ConfigChange.objects.filter(kind="percent_change").count() == 1


def test_two_people_on_the_same_version_one_wins(production_configured, release_manager, devops):
    lower = htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form(percent="5", tag="B2a")
    )
    rollback = htmx_client_for(devops).post(
        url("rollback", production_configured),
        {"reason": "errors", "expected_version": "1", "confirmed": "true"},
    )
    assert lower.status_code == 200 and rollback.status_code == 409
    assert b"Not applied" in rollback.content
    assert desired(production_configured).version == 2


@pytest.mark.parametrize(
    "data, message",
    [
        (percent_form(reason=""), "Give a reason"),
        (percent_form(reason="   "), "Give a reason"),
        (percent_form(percent="-1"), "whole number from 0 to 100"),
        (percent_form(percent="101"), "whole number from 0 to 100"),
        (percent_form(percent="10.5"), "whole number from 0 to 100"),
        (percent_form(percent="abc"), "whole number from 0 to 100"),
        (percent_form(percent=""), "Enter a percent"),
        (percent_form(tag=""), "Enter the phase tag"),
        (percent_form(tag="B2b<script>"), "A tag is 1–32 letters"),
        (percent_form(version=""), "Reload the page"),
        (percent_form(version="abc"), "Enter a whole number"),
    ],
)
def test_bad_percent_input_is_explained_and_nothing_is_written(
    production_configured, release_manager, data, message
):
    client = htmx_client_for(release_manager)
    response = client.post(url("set_percent", production_configured), data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert desired(production_configured).version == 1
    assert not PercentRequest.objects.exists()


def test_setting_the_same_config_is_refused_politely(production_configured, release_manager):
    response = htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form(percent="10", tag="B2a")
    )
    assert response.status_code == 409 and b"Nothing to change" in response.content


def test_an_unknown_environment_is_404(release_manager):
    import uuid

    path = reverse("rollout:set_percent", args=[uuid.uuid4()])
    assert htmx_client_for(release_manager).post(path, percent_form()).status_code == 404
    path = reverse("rollout:approve_request", args=[uuid.uuid4()])
    assert htmx_client_for(release_manager).post(path).status_code in (403, 404)


def test_controls_on_an_environment_without_config_say_so(edge, release_manager):
    bare = make_environment(edge, name="preview")
    response = htmx_client_for(release_manager).post(url("set_percent", bare), percent_form())
    assert response.status_code == 409 and b"no desired config" in response.content


# --- emergency stop and rollback ------------------------------------------------------------


def test_the_emergency_stop_is_one_person_one_confirmation(production_configured, devops):
    client = htmx_client_for(devops)
    confirm = client.post(url("emergency_stop", production_configured), {"reason": "5xx spike"})
    assert "EMERGENCY STOP — 100% of traffic to proxy" in confirm.content.decode()
    assert desired(production_configured).version == 1
    response = client.post(
        url("emergency_stop", production_configured), {"reason": "5xx spike", "confirmed": "true"}
    )
    assert response.status_code == 200 and b"EMERGENCY STOP queued" in response.content
    state = desired(production_configured)
    assert (state.emergency_proxy, state.canary_percent, state.version) == (True, 0, 2)
    change = ConfigChange.objects.get(version=2)
    assert change.kind == "emergency_stop" and change.requested_by == devops
    again = client.post(
        url("emergency_stop", production_configured), {"reason": "again", "confirmed": "true"}
    )
    assert again.status_code == 409 and b"already active" in again.content


def test_the_emergency_stop_wins_over_a_stale_page(production_configured, release_manager, devops):
    htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form(percent="5", tag="B2a")
    )
    # devops loaded the page at version 1; the stop needs no version and still applies.
    response = htmx_client_for(devops).post(
        url("emergency_stop", production_configured), {"reason": "NOT-AUS", "confirmed": "true"}
    )
    assert response.status_code == 200
    assert desired(production_configured).emergency_proxy is True


def test_the_emergency_stop_needs_a_reason(production_configured, devops):
    response = htmx_client_for(devops).post(
        url("emergency_stop", production_configured), {"reason": "", "confirmed": "true"}
    )
    assert response.status_code == 422 and b"Give a reason" in response.content
    assert desired(production_configured).emergency_proxy is False


def test_lifting_the_emergency_stop_keeps_0_percent(production_configured, devops):
    client = htmx_client_for(devops)
    client.post(
        url("emergency_stop", production_configured), {"reason": "spike", "confirmed": "true"}
    )
    page = client.get(url("environment", production_configured))
    assert b"EMERGENCY STOP ACTIVE" in page.content
    response = client.post(
        url("lift_emergency", production_configured),
        {"reason": "fixed", "expected_version": "2", "confirmed": "true"},
    )
    assert response.status_code == 200
    state = desired(production_configured)
    assert (state.emergency_proxy, state.canary_percent, state.version) == (False, 0, 3)


def test_rollback_goes_to_0_percent_with_a_reason(production_configured, devops):
    client = htmx_client_for(devops)
    missing = client.post(
        url("rollback", production_configured),
        {"reason": "", "expected_version": "1", "confirmed": "true"},
    )
    assert missing.status_code == 422 and desired(production_configured).version == 1
    confirm = client.post(
        url("rollback", production_configured), {"reason": "errors", "expected_version": "1"}
    )
    assert "production: 10% → 0%, tag B2a" in confirm.content.decode()
    assert b"native cookie" in confirm.content
    client.post(
        url("rollback", production_configured),
        {"reason": "errors", "expected_version": "1", "confirmed": "true"},
    )
    assert (
        desired(production_configured).canary_percent,
        desired(production_configured).version,
    ) == (0, 2)
    assert ConfigChange.objects.get(version=2).kind == "rollback"


def test_a_viewer_sees_no_controls(production_configured, viewer, release_manager):
    page = client_for(viewer).get(url("environment", production_configured)).content
    assert b"EMERGENCY STOP</button>" not in page and b"Set percent" not in page
    page = client_for(release_manager).get(url("environment", production_configured)).content
    assert b"EMERGENCY STOP</button>" in page and b"Set percent" in page


def test_every_action_records_request_id_and_client_address(production_configured, release_manager):
    htmx_client_for(release_manager).post(
        url("set_percent", production_configured),
        percent_form(percent="5", tag="B2a"),
        headers={"X-Request-ID": "req-123"},
    )
    entry = AuditEntry.objects.get(action="config.percent_change")
    assert entry.request_id == "req-123" and entry.client_ip == "127.0.0.1"
    assert entry.before["canary_percent"] == 10 and entry.after["canary_percent"] == 5


# --- refusals of the state, audited once by the control ----------------------------------------


def refusals():
    return list(
        AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED).values_list(
            "action", "actor__username", "environment__name", "via"
        )
    )


STOP = ("emergency_stop", {"reason": "5xx", **CONFIRMED})
ROLLBACK = ("rollback", {"reason": "errors", "expected_version": "1", **CONFIRMED})


@pytest.mark.parametrize(
    "first, control, form, action, why",
    [
        (STOP, *STOP, "config.emergency_stop.refused", "already active"),
        (
            STOP,
            "emergency_stop",
            {"reason": "the confirmation step"},
            "config.emergency_stop.refused",
            "already active",
        ),
        (
            ROLLBACK,
            "rollback",
            {"reason": "again", "expected_version": "2", **CONFIRMED},
            "config.rollback.refused",
            "already at 0%",
        ),
        (
            STOP,
            "lift_emergency",
            {"reason": "stale page", "expected_version": "1", **CONFIRMED},
            "config.lift_emergency.refused",
            "you saw version 1",
        ),
    ],
)
def test_a_refusal_of_the_state_from_the_page_is_audited_once(
    production_configured, devops, first, control, form, action, why
):
    client = htmx_client_for(devops)
    client.post(url(first[0], production_configured), first[1])
    response = client.post(url(control, production_configured), form)
    assert response.status_code == 409 and why in response.content.decode()
    assert refusals() == [(action, "dana", "production", "")]
    entry = AuditEntry.objects.get(action=action)
    # The act's reason with it; the confirmation step has none yet (it only plans).
    assert why in entry.detail and entry.reason == (
        "" if "confirmed" not in form else form["reason"]
    )


def test_nothing_to_change_from_the_page_is_audited_once(production_configured, release_manager):
    response = htmx_client_for(release_manager).post(
        url("set_percent", production_configured), percent_form(percent="10", tag="B2a")
    )
    assert response.status_code == 409
    assert refusals() == [("config.percent_change.refused", "rita", "production", "")]
    assert "Nothing to change" in AuditEntry.objects.get(outcome="refused").detail
