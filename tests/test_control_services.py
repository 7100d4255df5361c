"""Each control is one service function: it refuses a person without the permission whoever
calls it (a page or, without a request, an API or a command), and its confirmation shows the
target it then writes."""

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.kv_value import CanarySettings
from monitoring import drift
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PercentRequest
from rollout.permissions import Refused
from rollout.services import controls
from tests.conftest import client_for, htmx_client_for
from tests.preview.test_preflight import start_b2b
from tests.support.rollouts import b2b_request

pytestmark = pytest.mark.django_db

B2A = CanarySettings(10, "B2a", False)


def a_request(environment, person):
    return b2b_request(environment, person, base_version=1)


CALLS = {
    "lower": lambda env, who, other: controls.submit_percent(
        environment=env, percent=5, tag="B2a", reason="r", expected_version=1, actor=who
    ),
    "request an increase": lambda env, who, other: controls.submit_percent(
        environment=env, percent=25, tag="B2b", reason="r", expected_version=1, actor=who
    ),
    "approve": lambda env, who, other: controls.approve_percent_request(
        percent_request=a_request(env, other), approver=who
    ),
    "reject": lambda env, who, other: controls.reject_percent_request(
        percent_request=a_request(env, other), person=who, note="no"
    ),
    "rollback": lambda env, who, other: controls.rollback(
        environment=env, reason="r", expected_version=1, actor=who
    ),
    "emergency stop": lambda env, who, other: controls.emergency_stop(
        environment=env, reason="r", actor=who
    ),
    "lift": lambda env, who, other: controls.lift_emergency(
        environment=env, reason="r", expected_version=1, actor=who
    ),
    "adopt": lambda env, who, other: drift.adopt_external(
        environment=env, kv_hash="x", expected_version=1, reason="r", actor=who
    ),
    "overwrite": lambda env, who, other: drift.overwrite_external(
        environment=env, kv_hash="x", expected_version=1, reason="r", actor=who
    ),
    "start phase": lambda env, who, other: start_b2b(env, who, at=timezone.now()),
}


@pytest.mark.parametrize("control", CALLS)
def test_it_refuses_a_caller_without_the_permission_outside_a_request(
    production_configured, viewer, release_manager, control
):
    requests_before = PercentRequest.objects.count()
    with pytest.raises(Refused):
        CALLS[control](production_configured, viewer, release_manager)
    assert DesiredConfig.objects.get(environment=production_configured).version == 1
    assert ConfigChange.objects.filter(environment=production_configured).count() == 1
    assert PercentRequest.objects.exclude(state=PercentRequest.State.PENDING).count() == 0
    assert PercentRequest.objects.count() <= requests_before + 1  # the test's own request
    refusals = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert [entry.action for entry in refusals] == ["permission.denied"]
    assert refusals[0].actor == viewer
    assert refusals[0].environment == production_configured


def test_a_refused_page_click_is_audited_once(production_configured, tech_lead):
    response = client_for(tech_lead).post(
        reverse("rollout:emergency_stop", args=[production_configured.public_id]),
        {"reason": "r", "confirmed": "true"},
    )
    assert response.status_code == 403
    assert DesiredConfig.objects.get(environment=production_configured).version == 1
    refusals = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert [entry.action for entry in refusals] == ["permission.denied"]


CONFIRMED = {
    "lower": (
        "set_percent",
        {"canary_percent": "5", "canary_tag": "B2a", "reason": "r", "expected_version": "1"},
        None,
    ),
    "rollback": ("rollback", {"reason": "r", "expected_version": "1"}, None),
    "emergency stop": ("emergency_stop", {"reason": "r"}, None),
    "lift": ("lift_emergency", {"reason": "r", "expected_version": "2"}, "stop first"),
}


@pytest.mark.parametrize("control", CONFIRMED)
def test_the_confirmation_shows_what_the_act_writes(
    production_configured, devops, release_manager, control
):
    name, form, setup = CONFIRMED[control]
    if setup:
        controls.emergency_stop(environment=production_configured, reason="first", actor=devops)
    person = release_manager if control == "lower" else devops
    client = htmx_client_for(person)
    url = reverse(f"rollout:{name}", args=[production_configured.public_id])
    shown = client.post(url, form).content.decode()
    assert client.post(url, {**form, "confirmed": "true"}).status_code == 200
    desired = DesiredConfig.objects.get(environment=production_configured)
    change = ConfigChange.objects.get(environment=production_configured, version=desired.version)
    written = CanarySettings(**change.before)
    description = controls.describe_transition(production_configured, written, desired.settings)
    assert description in shown


def test_a_refused_state_reads_the_same_on_the_confirmation_and_the_act(
    production_configured, devops
):
    controls.emergency_stop(environment=production_configured, reason="first", actor=devops)
    client = client_for(devops)
    url = reverse("rollout:emergency_stop", args=[production_configured.public_id])
    shown = client.post(url, {"reason": "again"})
    acted = client.post(url, {"reason": "again", "confirmed": "true"})
    assert shown.status_code == acted.status_code == 409
    assert "already active" in shown.content.decode()
    assert DesiredConfig.objects.get(environment=production_configured).version == 2


def test_the_alert_rule_and_the_preview_suite_press_the_one_emergency_stop(
    production_configured, devops, monkeypatch
):
    """Both automatic stops ask the stop's own plan, and are refused the same way when a stop
    is already active: nothing written, nothing audited."""
    from types import SimpleNamespace

    from metrics import alerts
    from rollout.services import preview

    controls.emergency_stop(environment=production_configured, reason="by hand", actor=devops)
    asked, plan = [], controls.plan_emergency_stop
    monkeypatch.setattr(
        controls, "plan_emergency_stop", lambda **call: asked.append(call["system"]) or plan(**call)
    )
    entries = AuditEntry.objects.count()
    rule = SimpleNamespace(name="native-5xx-critical", describe=lambda: "native 5xx > 1%")
    by_rule = alerts._auto_emergency_stop(
        SimpleNamespace(figures={}), rule=rule, environment=production_configured
    )
    execution = SimpleNamespace(run=SimpleNamespace(environment=production_configured))
    by_suite = preview._emergency_on_and_observe(execution, None, 0.0, {})
    assert asked == ["rule:native-5xx-critical", preview.SYSTEM]
    assert by_rule is None
    assert by_suite.reason.startswith("The emergency stop is already active on production.")
    assert DesiredConfig.objects.get(environment=production_configured).version == 2
    assert AuditEntry.objects.count() == entries


@pytest.mark.parametrize("system", ["rule:native-5xx-critical", "preview-suite"])
def test_an_automatic_stop_is_recorded_like_a_persons(production_configured, system):
    change = controls.emergency_stop(environment=production_configured, reason="r", system=system)
    assert change.kind == ConfigChange.Kind.EMERGENCY_STOP and change.requested_by_system == system
    entry = AuditEntry.objects.get(action="config.emergency_stop")
    assert entry.actor is None and entry.actor_label == system
