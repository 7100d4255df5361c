"""A KV write that got no answer may still be applied by the API later — after a newer version
was written, say an emergency stop. The KV client says which failures may have landed, the
writer records them on the change, and the drift check re-applies the desired config when such
a late write of ours puts an older version's settings back; a person's write of the same
settings is still left to people. Against the edge stand-in as a real HTTP server."""

import json
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from config.celery import app
from integrations.cloudflare_kv import KVClient, KVError
from integrations.kv_value import CanarySettings, read_settings
from monitoring.models import DriftEvent, DriftState
from monitoring.observation import observe
from outbox.models import Notification
from rollout import kv_writer
from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from rollout.services import controls
from tests.conftest import NAMESPACES, wait_for
from tests.monitoring.conftest import settle_writes, write_plan
from tests.support.changes import first_config
from tests.support.fault_figures import report
from tests.support.threads import at_once

pytestmark = pytest.mark.django_db

B2A = CanarySettings(10, "B2a", False)
B2B = CanarySettings(25, "B2b", False)
EMERGENCY = CanarySettings(0, "B2a", True)
# Longer than the client's timeout (0.5 s) plus the emergency stop's write, plus the one second
# Workers KV keeps between two writes of one key: the hung write lands, it is not refused.
HANG = 3.0


def kv_json(edge):
    return json.loads(edge.kv_value(NAMESPACES["production"]))


def client_for_the_stand_in(edge, settings, **overrides) -> KVClient:
    options = {
        "base_url": edge.api_base_url,
        "token": settings.CLOUDFLARE_API_TOKEN,
        "account_id": edge.account,
        "namespace_id": NAMESPACES["production"],
        "timeout": 0.5,
        **overrides,
    }
    return KVClient(**options)


def failure_of(call) -> KVError:
    with pytest.raises(KVError) as caught:
        call()
    return caught.value


def change(environment, **fields) -> ConfigChange:
    return controls.request_change(
        environment=environment, expected_version=None, system="test", **fields
    )


def stop(environment) -> ConfigChange:
    return change(environment, settings=EMERGENCY, kind="emergency_stop", reason="5xx spike")


def write_and_confirm(environment) -> ConfigChange:
    outcome = settle_writes(environment)
    assert kv_writer.confirm(outcome.confirm_change_id).retry_in is None
    written = ConfigChange.objects.get(pk=outcome.confirm_change_id)
    assert written.state == "in_effect"
    return written


def queued_drift_checks() -> list[tuple[list, str | None]]:
    """(args, eta) of each drift check waiting on the broker."""
    found = []
    with app.connection_for_read() as broker:
        channel = broker.default_channel
        while (message := channel.basic_get("celery", no_ack=True)) is not None:
            if message.headers["task"] == "monitoring.tasks.observe_environment":
                found.append((message.decode()[0], message.headers.get("eta")))
    return found


@pytest.fixture
def unanswered_first_write(edge, production, settings):
    """Version 1 (10 %) whose PUT lost its connection, then an emergency stop (version 2)
    written and in effect. The dropped PUT never lands in the stand-in: where a test needs it
    to, ``land_late`` puts its value into KV by the side door."""
    settings.SLACK_INCIDENTS_WEBHOOK_URL = "http://127.0.0.1:9/incidents"
    first_config(production, B2A, reason="initial")
    edge.knobs(kv_faults=[{"method": "PUT", "close": True}])
    assert kv_writer.reconcile(production.pk).retry_in is not None
    first = ConfigChange.objects.get(environment=production, version=1)
    assert first.unanswered_write_at is not None
    stop(production)
    write_and_confirm(production)
    assert kv_json(edge)["emergency_proxy"] is True
    assert observe(production.pk).drift.kv_state == "in_sync"
    return production


def land_late(edge, settings_: CanarySettings, by: str = ""):
    value = {**settings_.as_dict(), "last_updated": "2026-03-02T10:00:00Z"}
    if by:
        value["by"] = by
    edge.put_external(NAMESPACES["production"], json.dumps(value))


# --- the KV client ------------------------------------------------------------------------------


def test_a_put_that_hangs_past_the_timeout_may_have_landed(edge, settings):
    edge.knobs(kv_faults=[{"method": "PUT", "hang": 1.5}])
    with client_for_the_stand_in(edge, settings) as kv:
        error = failure_of(lambda: kv.put_value('{"canary_percent":10}'))
    assert error.transient and error.may_have_landed
    assert "timed out" in error.message and "may still be applied" in error.message


def test_a_put_whose_connection_dropped_may_have_landed(edge, settings):
    edge.knobs(kv_faults=[{"method": "PUT", "close": True}])
    with client_for_the_stand_in(edge, settings) as kv:
        error = failure_of(lambda: kv.put_value('{"canary_percent":10}'))
    assert error.transient and error.may_have_landed


def test_a_put_answered_with_500_did_not_land(edge, settings):
    edge.knobs(kv_faults=[{"method": "PUT", "status": 500}])
    with client_for_the_stand_in(edge, settings) as kv:
        error = failure_of(lambda: kv.put_value('{"canary_percent":10}'))
    assert error.transient and error.status == 500 and not error.may_have_landed


def test_a_put_that_could_not_connect_did_not_land(edge, settings):
    with client_for_the_stand_in(edge, settings, base_url="http://127.0.0.1:9/client/v4") as kv:
        error = failure_of(lambda: kv.put_value('{"canary_percent":10}'))
    assert error.transient and "unreachable" in error.message and not error.may_have_landed


def test_a_read_that_hangs_changes_nothing(edge, settings):
    edge.knobs(kv_faults=[{"method": "GET", "hang": 1.5}])
    with client_for_the_stand_in(edge, settings) as kv:
        error = failure_of(kv.get_value)
    assert "timed out" in error.message and not error.may_have_landed


# --- the writer and the drift check ---------------------------------------------------------------


def test_a_hung_increase_landing_after_an_emergency_stop_is_undone(edge, production, settings):
    settings.HTTP_TIMEOUT_SECONDS = 0.5
    settings.SLACK_INCIDENTS_WEBHOOK_URL = "http://127.0.0.1:9/incidents"
    write_plan(production)
    assert observe(production.pk).drift.kv_state == "in_sync"
    time.sleep(1.05)  # Workers KV refuses a second write of one key within a second

    increase = change(production, settings=B2B, kind="percent_change", reason="go B2b")
    edge.knobs(kv_faults=[{"method": "PUT", "hang": HANG}])
    assert kv_writer.reconcile(production.pk).retry_in is not None
    increase.refresh_from_db()
    assert increase.state == "applying" and increase.unanswered_write_at is not None
    assert "may still be applied" in increase.last_error

    emergency = stop(production)
    write_and_confirm(production)
    assert kv_json(edge)["emergency_proxy"] is True

    # The API applies the hung version-2 PUT now, after the stop: KV holds 25 %, no emergency.
    def landed():
        return [
            r
            for r in edge.requests("PUT")
            if r["status"] is not None and json.loads(r["body"])["canary_percent"] == 25
        ]

    hung = wait_for(landed, timeout=HANG + 10, message="the hung PUT to be served")
    assert hung[0]["status"] == 200, "the late write was refused; the stop's write came too late"
    assert kv_json(edge)["canary_percent"] == 25 and kv_json(edge)["emergency_proxy"] is False

    state = observe(production.pk).drift
    assert state.kv_state == "writing" and not state.needs_decision
    assert state.resolution == "re-applied as version 4 by the late-write-guard"
    reapply = ConfigChange.objects.get(environment=production, version=4)
    assert reapply.kind == "reapply" and reapply.requested_by_system == "late-write-guard"
    assert reapply.settings == EMERGENCY
    assert reapply.reason == (
        "KV held version 2's settings again: its write that got no answer landed after "
        "version 3 was written; re-applying version 3"
    )
    emergency.refresh_from_db()
    assert emergency.state == "in_effect"  # it was; the re-apply is a new version

    # A second look at the same value re-applies nothing more.
    assert observe(production.pk).drift.kv_state == "writing"
    assert DesiredConfig.objects.get(environment=production).version == 4

    assert write_and_confirm(production).version == 4
    assert kv_json(edge)["emergency_proxy"] is True and kv_json(edge)["canary_percent"] == 0
    assert observe(production.pk).drift.kv_state == "in_sync"

    naming_it = AuditEntry.objects.filter(reason__contains="got no answer landed")
    assert [(e.action, e.actor_label) for e in naming_it] == [
        ("config.reapply", "late-write-guard")
    ]
    assert not AuditEntry.objects.filter(action="drift.external_change").exists()
    event = DriftEvent.objects.get(detail__contains="got no answer landed")
    assert (event.old_kv_state, event.new_kv_state) == ("in_sync", "writing")
    assert not DriftEvent.objects.filter(new_kv_state="external").exists()
    announced = Notification.objects.get(channel="slack_incidents")
    assert "unanswered write of version 2 landed late" in announced.subject
    assert "version 3 re-applied" in announced.subject
    assert not Notification.objects.filter(subject__contains="outside the dashboard").exists()

    states = dict(
        ConfigChange.objects.filter(environment=production).values_list("version", "state")
    )
    figures = {
        "requested": 2,
        "lost": sum(state in ("requested", "applying", "failed") for state in states.values()),
        "superseded": sum(state == "superseded" for state in states.values()),
        "late writes landed": len(hung),
        "re-applied by the guard": ConfigChange.objects.filter(
            environment=production, requested_by_system="late-write-guard"
        ).count(),
        "KV ended in": read_settings(edge.kv_value(NAMESPACES["production"])).describe(),
    }
    report("KV API: an unanswered write lands after an emergency stop", figures)
    assert figures["lost"] == 0 and figures["re-applied by the guard"] == 1
    assert figures["KV ended in"].startswith("EMERGENCY")


def test_a_write_that_got_an_answer_is_not_mistaken_for_a_late_one(edge, production, settings):
    """Someone's `wrangler kv key put` of an older version's settings stays for a person."""
    settings.SLACK_INCIDENTS_WEBHOOK_URL = "http://127.0.0.1:9/incidents"
    first_config(production, B2A, reason="initial")
    edge.knobs(kv_faults=[{"method": "PUT", "status": 500}])
    assert kv_writer.reconcile(production.pk).retry_in is not None
    assert ConfigChange.objects.get(version=1).unanswered_write_at is None
    stop(production)
    write_and_confirm(production)
    observe(production.pk)

    land_late(edge, B2A, by="wrangler")
    state = observe(production.pk).drift
    assert state.kv_state == "external" and state.needs_decision
    assert kv_json(edge)["by"] == "wrangler"  # left alone
    assert DesiredConfig.objects.get(environment=production).version == 2
    assert AuditEntry.objects.filter(action="drift.external_change").count() == 1
    assert "outside the dashboard" in Notification.objects.get(channel="slack_incidents").subject


def test_an_unanswered_write_older_than_the_horizon_is_not_ours_any_more(
    edge, unanswered_first_write
):
    land_late(edge, B2A)
    with time_machine.travel(timezone.now() + timedelta(seconds=601), tick=True):
        state = observe(unanswered_first_write.pk).drift
    assert state.kv_state == "external" and state.needs_decision
    assert DesiredConfig.objects.get(environment=unanswered_first_write).version == 2
    assert AuditEntry.objects.filter(action="drift.external_change").count() == 1


def test_the_horizon_is_a_setting(edge, unanswered_first_write, settings):
    settings.LATE_WRITE_HORIZON_SECONDS = 0
    land_late(edge, B2A)
    assert observe(unanswered_first_write.pk).drift.kv_state == "external"


def test_a_late_write_within_the_horizon_is_re_applied(edge, unanswered_first_write):
    land_late(edge, B2A)
    state = observe(unanswered_first_write.pk).drift
    assert state.kv_state == "writing" and not state.needs_decision
    assert "KV held version 1's settings again" in state.detail
    reapply = ConfigChange.objects.get(environment=unanswered_first_write, version=3)
    assert reapply.settings == EMERGENCY and reapply.requested_by_system == "late-write-guard"


def test_a_value_that_matches_no_unanswered_write_is_left_to_people(edge, unanswered_first_write):
    land_late(edge, CanarySettings(50, "B2a", False), by="wrangler")
    state = observe(unanswered_first_write.pk).drift
    assert state.kv_state == "external" and state.needs_decision
    assert DesiredConfig.objects.get(environment=unanswered_first_write).version == 2


def test_a_drift_check_is_queued_soon_after_a_newer_change_while_a_write_is_unanswered(
    edge, production, broker_url, django_capture_on_commit_callbacks
):
    first_config(production, B2A, reason="initial")
    edge.knobs(kv_faults=[{"method": "PUT", "close": True}])
    kv_writer.reconcile(production.pk)
    stop(production)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = settle_writes(production)  # written: one check a few seconds later
        kv_writer.confirm(outcome.confirm_change_id)  # in effect: another
    checks = queued_drift_checks()
    assert [args for args, _ in checks] == [[production.pk], [production.pk]]
    assert all(eta is not None for _, eta in checks)


def test_no_drift_check_is_queued_when_every_write_was_answered(
    edge, production, broker_url, django_capture_on_commit_callbacks
):
    first_config(production, B2A, reason="initial")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = settle_writes(production)
        kv_writer.confirm(outcome.confirm_change_id)
    assert queued_drift_checks() == []


@pytest.mark.django_db(transaction=True)
def test_two_drift_checks_at_once_re_apply_once(edge, unanswered_first_write, broker_url):
    land_late(edge, B2A)
    start = threading.Barrier(2)

    def check():
        start.wait(timeout=10)
        return observe(unanswered_first_write.pk).drift.kv_state

    states = at_once(check, 2, timeout=30)
    assert states == ["writing", "writing"]
    assert DesiredConfig.objects.get(environment=unanswered_first_write).version == 3
    assert AuditEntry.objects.filter(action="config.reapply").count() == 1
    assert Notification.objects.filter(channel="slack_incidents").count() == 1
    assert DriftState.objects.get(environment=unanswered_first_write).external_hash != ""
