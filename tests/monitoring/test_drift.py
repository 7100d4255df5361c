"""Drift detection against the edge stand-in: an external KV change is detected, audited once,
announced, and adopted or overwritten only by a person allowed to; a write that has not reached
the edge within the propagation allowance is flagged, then clears."""

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from integrations.kv_value import CanarySettings
from monitoring import tasks
from monitoring.models import DriftEvent, DriftState
from monitoring.observation import observe
from outbox.models import Notification
from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from tests.conftest import NAMESPACES, client_for, htmx_client_for, wait_for
from tests.monitoring.conftest import settle_writes, write_plan
from tests.support.changes import change_config
from tests.support.forms import confirm

pytestmark = pytest.mark.django_db

EXTERNAL_50 = '{"canary_percent":50,"canary_tag":"B2a","emergency_proxy":false,"by":"wrangler"}'


def put_external(edge, raw):
    edge.put_external(NAMESPACES["production"], raw)


def kv_json(edge):
    return json.loads(edge.kv_value(NAMESPACES["production"]))


def decide(client, environment, action, state=None, **fields):
    state = state or DriftState.objects.get(environment=environment)
    data = {
        "reason": "incident 4711: keep what on-call set",
        "kv_hash": state.kv_hash,
        "expected_version": DesiredConfig.objects.get(environment=environment).version,
        "confirmed": "true",
    }
    data.update(fields)
    url = reverse(f"monitoring:{action}", args=[environment.public_id])
    return client.post(url, data)


@pytest.fixture
def external(edge, planned):
    """Production at 10 % with someone's `wrangler kv key put` of 50 % seen by a drift check."""
    assert observe(planned.pk).drift.kv_state == "in_sync"
    put_external(edge, EXTERNAL_50)
    state = observe(planned.pk).drift
    assert state.kv_state == "external"
    return planned


def test_in_sync_everywhere(edge, planned):
    state = observe(planned.pk).drift
    assert (state.kv_state, state.edge_state) == ("in_sync", "in_sync")
    assert state.kv_settings == CanarySettings(10, "B2a", False).as_dict()
    assert state.desired_version == 1 and not state.attention
    assert not AuditEntry.objects.filter(action="drift.external_change").exists()


def test_an_external_change_is_shown_audited_once_and_announced(edge, planned, settings):
    settings.SLACK_INCIDENTS_WEBHOOK_URL = "http://127.0.0.1:9/incidents"
    observe(planned.pk)
    put_external(edge, EXTERNAL_50)
    for _ in range(3):  # every minute, but one audit entry per distinct value
        state = observe(planned.pk).drift
    assert state.kv_state == "external" and state.needs_decision
    assert "KV holds 50%, tag B2a, desired is 10%, tag B2a (version 1)" in state.detail
    entry = AuditEntry.objects.get(action="drift.external_change")
    assert entry.actor_label == "drift-check" and entry.outcome == "failed"
    assert entry.before["canary_percent"] == 10 and entry.after["canary_percent"] == 50
    assert entry.environment_id == planned.pk
    notification = Notification.objects.get(channel="slack_incidents")
    assert "changed outside the dashboard" in notification.subject
    # Never silently reverted: KV still holds what on-call wrote.
    assert kv_json(edge)["canary_percent"] == 50 and kv_json(edge)["by"] == "wrangler"
    assert DesiredConfig.objects.get(environment=planned).canary_percent == 10
    assert DriftEvent.objects.filter(environment=planned, new_kv_state="external").count() == 1

    put_external(edge, EXTERNAL_50.replace("50", "0"))  # a second, different value
    observe(planned.pk)
    assert AuditEntry.objects.filter(action="drift.external_change").count() == 2


def test_the_beat_task_runs_a_check_per_environment(edge, planned):
    assert tasks.observe_environments() == [planned.pk]
    tasks.observe_environment(planned.pk)
    assert DriftState.objects.get(environment=planned).kv_state == "in_sync"


def test_adopting_makes_the_kv_value_the_desired_config(edge, external, release_manager):
    response = decide(client_for(release_manager), external, "adopt")
    assert response.status_code == 302
    desired = DesiredConfig.objects.get(environment=external)
    assert (desired.version, desired.canary_percent) == (2, 50)
    change = ConfigChange.objects.get(environment=external, version=2)
    assert change.kind == "adopt_external" and change.requested_by == release_manager
    assert change.reason == "incident 4711: keep what on-call set"
    assert AuditEntry.objects.filter(action="config.adopt_external", actor=release_manager).exists()
    state = DriftState.objects.get(environment=external)
    assert state.resolution == "adopted by rita" and not state.needs_decision

    settle_writes(external)
    assert kv_json(edge)["by"] == "wrangler"  # KV already held it: nothing rewritten
    state = observe(external.pk).drift
    assert state.kv_state == "in_sync" and state.external_hash == "" and state.resolution == ""


def test_a_decision_is_confirmed_first_naming_what_it_writes(external, release_manager):
    client = client_for(release_manager)
    confirmation = decide(client, external, "adopt", confirmed="")
    text = confirmation.content.decode()
    assert (
        "production: adopt the value in KV, 50%, tag B2a, as the desired config (version 2)"
        in text
    )
    assert DesiredConfig.objects.get(environment=external).version == 1
    assert DriftState.objects.get(environment=external).needs_decision

    done = confirm(client, confirmation)
    assert done.redirect_chain == [(f"/monitoring/environments/{external.public_id}/", 302)]
    assert DesiredConfig.objects.get(environment=external).canary_percent == 50


def test_with_htmx_the_confirmation_stands_in_the_drift_card(external, admin_user):
    confirmation = decide(htmx_client_for(admin_user), external, "overwrite", confirmed="")
    text = confirmation.content.decode()
    assert "<html" not in text and f'id="drift-{external.public_id}"' in text
    assert "production: overwrite KV with 10%, tag B2a (version 2)" in text
    assert DesiredConfig.objects.get(environment=external).version == 1


def test_overwriting_re_applies_the_desired_config(edge, external, admin_user):
    response = decide(client_for(admin_user), external, "overwrite")
    assert response.status_code == 302
    desired = DesiredConfig.objects.get(environment=external)
    assert (desired.version, desired.canary_percent) == (2, 10)
    assert ConfigChange.objects.get(environment=external, version=2).kind == "reapply"
    assert observe(external.pk).drift.kv_state == "writing"

    settle_writes(external)  # the same settings, but KV differs, so it writes
    assert kv_json(edge)["canary_percent"] == 10
    assert kv_json(edge)["by"] == "wrangler"  # keys we do not own survive
    assert observe(external.pk).drift.kv_state == "in_sync"


@pytest.mark.parametrize("person", ["viewer", "tech_lead", "devops", "outsider"])
@pytest.mark.parametrize("action", ["adopt", "overwrite"])
def test_only_people_who_may_change_the_config_decide(external, request, person, action):
    user = request.getfixturevalue(person)
    assert decide(client_for(user), external, action).status_code == 403
    assert DesiredConfig.objects.get(environment=external).version == 1
    assert DriftState.objects.get(environment=external).needs_decision


@pytest.mark.parametrize("action", ["adopt", "overwrite"])
def test_decisions_take_only_post_from_people_logged_in(external, release_manager, action):
    url = reverse(f"monitoring:{action}", args=[external.public_id])
    assert client_for(release_manager).get(url).status_code == 405
    response = decide(Client(), external, action)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_decision_needs_a_reason(external, release_manager):
    response = decide(client_for(release_manager), external, "adopt", reason="  ")
    assert response.status_code == 422 and b"This field is required" in response.content
    response = decide(client_for(release_manager), external, "adopt", kv_hash="nothex")
    assert response.status_code == 422
    assert DesiredConfig.objects.get(environment=external).version == 1


def test_a_decision_on_a_value_that_changed_since_is_refused(edge, external, release_manager):
    seen = DriftState.objects.get(environment=external)
    put_external(edge, EXTERNAL_50.replace("50", "75"))
    observe(external.pk)
    response = decide(client_for(release_manager), external, "adopt", state=seen)
    assert response.status_code == 409 and b"changed or was dealt with" in response.content
    assert DesiredConfig.objects.get(environment=external).version == 1


def test_a_decision_on_a_desired_version_that_moved_on_is_refused(external, release_manager):
    change_config(
        external,
        CanarySettings(0, "B2a", True),
        kind="emergency_stop",
        reason="5xx spike",
        expected_version=None,
    )
    response = decide(client_for(release_manager), external, "adopt", expected_version=1)
    assert response.status_code == 409 and b"the config changed since" in response.content
    # The refused decision left nothing behind: the drift is still open for a decision.
    assert DriftState.objects.get(environment=external).resolution == ""
    assert DesiredConfig.objects.get(environment=external).emergency_proxy is True


def test_a_value_decided_once_cannot_be_decided_twice(external, release_manager, admin_user):
    state = DriftState.objects.get(environment=external)
    assert decide(client_for(release_manager), external, "adopt", state=state).status_code == 302
    response = decide(client_for(admin_user), external, "overwrite", state=state)
    assert response.status_code == 409
    assert DesiredConfig.objects.get(environment=external).version == 2


def test_garbage_in_kv_can_be_overwritten_but_not_adopted(edge, planned, release_manager):
    observe(planned.pk)
    put_external(edge, "canary=50 (typed by hand)")
    state = observe(planned.pk).drift
    assert state.kv_state == "external" and state.kv_settings is None
    assert "a value that is not a valid config" in state.detail
    entry = AuditEntry.objects.get(action="drift.external_change")
    assert entry.after == {"raw": "canary=50 (typed by hand)"}
    response = decide(client_for(release_manager), planned, "adopt")
    assert response.status_code == 409 and b"overwrite it instead" in response.content
    assert decide(client_for(release_manager), planned, "overwrite").status_code == 302


def test_a_deleted_key_is_an_external_change(edge, planned):
    observe(planned.pk)
    edge.delete_external(NAMESPACES["production"])
    state = observe(planned.pk).drift
    assert state.kv_state == "external" and state.kv_missing
    assert "the key is missing" in state.detail


def test_a_failed_write_is_not_called_an_external_change(edge, planned, settings):
    settings.KV_WRITE_MAX_ATTEMPTS = 1
    change_config(planned, CanarySettings(25, "B2b", False), reason="B2b", expected_version=1)
    edge.knobs(kv_faults=[{"method": "PUT", "status": 400}])
    time.sleep(1.05)  # KV refuses a second write of one key within a second
    settle_writes(planned)
    state = observe(planned.pk).drift
    assert state.kv_state == "write_failed" and state.needs_decision
    assert "the write of version 2 failed" in state.detail
    assert not AuditEntry.objects.filter(action="drift.external_change").exists()


def test_a_write_pending_is_not_drift(edge, planned):
    change_config(planned, CanarySettings(25, "B2b", False), reason="B2b", expected_version=1)
    assert observe(planned.pk).drift.kv_state == "writing"


def test_unreadable_kv_is_recorded_not_raised(edge, planned, settings):
    settings.CLOUDFLARE_API_TOKEN = "wrong-token"
    state = observe(planned.pk).drift
    assert state.kv_state == "unreadable" and "KV could not be read" in state.detail
    assert state.edge_state == "in_sync"  # the edge still matches the desired config


def test_a_write_that_has_not_reached_the_edge_is_flagged_then_clears(edge, production, settings):
    settings.PROPAGATION_ALLOWANCE_SECONDS = 0.5
    edge.knobs(propagation_delay=1.5)
    write_plan(production)
    written_at = ConfigChange.objects.get(environment=production).written_at

    state = observe(production.pk).drift
    assert (state.kv_state, state.edge_state) == ("in_sync", "propagating")
    assert state.kv_seen_at == written_at and not state.attention

    time.sleep(0.6)
    state = observe(production.pk).drift
    assert state.edge_state == "lagging" and state.attention
    assert "the edge reports 0%, tag , KV holds 10%, tag B2a since" in state.detail

    state = wait_for(
        lambda: (s := observe(production.pk).drift).edge_state == "in_sync" and s,
        timeout=5,
        interval=0.2,
        message="the edge to report the write",
    )
    assert state.edge_behind_since is None and not state.attention
    flips = list(
        DriftEvent.objects.filter(environment=production)
        .order_by("at", "id")
        .values_list("new_edge_state", flat=True)
    )
    assert flips == ["propagating", "lagging", "in_sync"]


def test_an_unreachable_edge_is_recorded(edge, planned):
    planned.qa_url = "http://127.0.0.1:9/api/qa"
    planned.save()
    state = observe(planned.pk).drift
    assert state.edge_state == "unreadable" and "the edge could not be read" in state.detail
