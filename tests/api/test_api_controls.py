"""The controls over the API keep the rules of a click: the two-person rule, compare-and-set on
the version the caller saw, a stop that staleness never blocks, and an audit entry naming the
token for every act and refusal."""

import pytest
from django.urls import reverse

from api.models import ApiToken
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PercentRequest
from tests.api.conftest import PRODUCTION, assert_problem, service_token, token_of
from tests.conftest import client_for

RAISE = {"percent": 25, "tag": "B2b", "reason": "next phase", "expected_version": 1}


def _via(user) -> str:
    token = ApiToken.objects.filter(user=user).latest("created_at")
    return token.label


def test_a_raise_waits_for_a_second_person_and_is_approved_by_another_token(
    api, production_configured, release_manager, tech_lead
):
    rita, theo = api(token_of(release_manager)), api(token_of(tech_lead))
    asked = rita.post(f"{PRODUCTION}/percent", json=RAISE)
    assert asked.status_code == 202, asked.text
    pending = asked.json()["request"]
    assert (pending["state"], pending["percent"]) == ("pending", 25)
    assert pending["requested_by"] == "rita"
    assert DesiredConfig.objects.get().version == 1  # nothing applied yet

    approved = theo.post(f"/requests/{pending['id']}/approve", json={"note": "looks good"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["request"]["state"] == "approved" and body["request"]["decided_by"] == "theo"
    assert (body["change"]["version"], body["change"]["approved_by"]) == (2, "theo")
    entries = {e.action: e for e in AuditEntry.objects.filter(via__startswith="token ")}
    assert entries["approval.requested"].via == _via(release_manager)
    assert entries["approval.approved"].via == _via(tech_lead)
    # The change is the requester's act, applied by the approval: it names no token of theirs.
    assert AuditEntry.objects.get(action="config.percent_change").via == ""


def test_a_persons_own_token_never_approves_their_request(api, production_configured, admin_user):
    adam = api(token_of(admin_user))
    pending = adam.post(f"{PRODUCTION}/percent", json=RAISE).json()["request"]
    body = assert_problem(adam.post(f"/requests/{pending['id']}/approve", json={}), 409)
    assert "second person" in body["detail"]
    assert PercentRequest.objects.get().state == "pending"
    assert DesiredConfig.objects.get().version == 1
    refused = AuditEntry.objects.get(action="approval.refused")
    assert (refused.actor, refused.outcome) == (admin_user, "refused")
    assert refused.via == _via(admin_user)


def test_a_person_never_approves_their_own_raise_through_a_service_token(
    api, production_configured, admin_user, tech_lead
):
    # Adam asks for a raise with his own token, then decides on it with a service token he
    # made: a service account is nobody's second person, whatever its role.
    pending = api(token_of(admin_user)).post(f"{PRODUCTION}/percent", json=RAISE)
    request_id = pending.json()["request"]["id"]
    bot = api(service_token(admin_user, account="ci-deploy", role="tech lead"))

    for decision in ("approve", "reject"):
        body = assert_problem(bot.post(f"/requests/{request_id}/{decision}", json={}), 403)
        assert "service account" in body["detail"]
    denied = AuditEntry.objects.filter(action="permission.denied").order_by("id")
    assert [(entry.actor.username, entry.outcome) for entry in denied] == [
        ("ci-deploy", "refused"),
        ("ci-deploy", "refused"),
    ]
    assert all(entry.via.startswith("token ci-deploy token") for entry in denied)
    assert "needs a person" in denied[0].detail
    assert PercentRequest.objects.get().state == "pending"
    assert DesiredConfig.objects.get().version == 1

    approved = api(token_of(tech_lead)).post(f"/requests/{request_id}/approve", json={})
    assert approved.status_code == 200, approved.text


def test_a_service_token_asks_for_a_raise_a_person_approves_and_it_may_cancel_its_own(
    api, production_configured, admin_user, tech_lead
):
    bot = api(service_token(admin_user, account="release-bot", role="admin"))
    pending = bot.post(f"{PRODUCTION}/percent", json=RAISE).json()["request"]
    assert pending["requested_by"] == "release-bot"
    assert_problem(bot.post(f"/requests/{pending['id']}/approve", json={}), 403)
    cancelled = bot.post(f"/requests/{pending['id']}/reject", json={})
    assert cancelled.json()["request"]["state"] == "cancelled"

    again = bot.post(f"{PRODUCTION}/percent", json=RAISE).json()["request"]
    approved = api(token_of(tech_lead)).post(f"/requests/{again['id']}/approve", json={})
    assert approved.json()["change"]["approved_by"] == "theo"
    assert DesiredConfig.objects.get().version == 2


def test_a_stale_version_is_409_with_the_current_version(
    api, production_configured, release_manager
):
    rita = api(token_of(release_manager))
    lowered = rita.post(
        f"{PRODUCTION}/percent",
        json={"percent": 5, "tag": "B2a", "reason": "lower", "expected_version": 1},
    )
    assert lowered.status_code == 201, lowered.text
    assert lowered.json()["change"]["version"] == 2

    body = assert_problem(
        rita.post(f"{PRODUCTION}/rollback", json={"reason": "back", "expected_version": 1}), 409
    )
    assert body["current_version"] == 2
    assert DesiredConfig.objects.get().version == 2
    # Audited once, by the control, as the same refusal from the page is.
    (refused,) = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert refused.action == "config.rollback.refused" and refused.actor == release_manager
    assert refused.via == _via(release_manager) and refused.environment == production_configured
    assert "you saw version 1" in refused.detail


def test_the_emergency_stop_needs_no_version(api, production_configured, devops):
    dana = api(token_of(devops))
    stopped = dana.post(f"{PRODUCTION}/emergency-stop", json={"reason": "5xx climbing"})
    assert stopped.status_code == 201, stopped.text
    change = stopped.json()["change"]
    assert change["kind"] == "emergency_stop" and change["after"]["emergency_proxy"] is True
    stale = dana.post(
        f"{PRODUCTION}/emergency-lift", json={"reason": "recovered", "expected_version": 1}
    )
    assert_problem(stale, 409)
    lifted = dana.post(
        f"{PRODUCTION}/emergency-lift", json={"reason": "recovered", "expected_version": 2}
    )
    assert lifted.status_code == 201, lifted.text
    assert AuditEntry.objects.get(action="config.emergency_stop").via == _via(devops)


def test_the_status_shows_desired_and_pending(api, production_configured, release_manager):
    rita = api(token_of(release_manager))
    rita.post(f"{PRODUCTION}/percent", json=RAISE)
    status = rita.get(PRODUCTION)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["desired"] == {"version": 1, "percent": 10, "tag": "B2a", "emergency": False}
    assert [item["percent"] for item in body["pending_requests"]] == [25]
    assert [item["kind"] for item in body["open_changes"]] == ["initial"]
    assert body["drift"]["state"] == "unknown"
    assert_problem(rita.get("/environments/pix-immo-api/staging"), 404)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        ({**RAISE, "percent": "25"}, 422, "percent"),
        ({**RAISE, "percent": 101}, 422, "percent"),
        ({**RAISE, "expected_version": None}, 422, "expected_version"),
        ({**RAISE, "tag": "B2b; rm"}, 422, "tag"),
        ({**RAISE, "reason": "   "}, 422, "reason"),
        ({**RAISE, "percnt": 25}, 422, "percnt"),
        ({k: v for k, v in RAISE.items() if k != "reason"}, 422, "reason"),
        ([1, 2], 422, None),
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(
    api, production_configured, release_manager, body, status, field
):
    rita = api(token_of(release_manager))
    before = AuditEntry.objects.count()
    if isinstance(body, bytes):
        response = rita.post(
            f"{PRODUCTION}/percent", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = rita.post(f"{PRODUCTION}/percent", json=body)
    problem = assert_problem(response, status)
    if field:
        assert field in [error["field"] for error in problem["errors"]], problem
        assert all(error["message"] for error in problem["errors"])
    assert PercentRequest.objects.count() == 0
    assert ConfigChange.objects.count() == 1  # the initial config only
    assert AuditEntry.objects.count() == before


def test_the_audit_page_and_export_name_the_token(api, production_configured, release_manager):
    api(token_of(release_manager, name="deploy pipeline")).post(f"{PRODUCTION}/percent", json=RAISE)
    client = client_for(release_manager)
    via = _via(release_manager)
    assert f"via {via}" in client.get(reverse("rollout:audit")).content.decode()
    exported = client.get(reverse("rollout:audit_export", args=["json"]))
    assert via in b"".join(exported.streaming_content).decode()


def test_a_raise_a_later_change_replaced_is_stale_in_the_api_too(
    api, production_configured, release_manager, devops, tech_lead
):
    pending = api(token_of(release_manager)).post(f"{PRODUCTION}/percent", json=RAISE)
    request_id = pending.json()["request"]["id"]
    stopped = api(token_of(devops)).post(f"{PRODUCTION}/emergency-stop", json={"reason": "5xx"})
    assert stopped.status_code == 201, stopped.text

    theo = api(token_of(tech_lead))
    closed = theo.get(f"/requests/{request_id}").json()
    assert (closed["state"], closed["superseded_by_version"]) == ("stale", 2)
    assert theo.get("/requests").json() == []
    assert theo.get(PRODUCTION).json()["pending_requests"] == []
    body = assert_problem(theo.post(f"/requests/{request_id}/approve", json={}), 409)
    assert "closed as stale: version 2" in body["detail"]
    (refused,) = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert (refused.action, refused.actor) == ("approval.refused", tech_lead)
    superseded = AuditEntry.objects.get(action="approval.superseded")
    assert superseded.actor == devops and superseded.via == _via(devops)
