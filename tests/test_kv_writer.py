"""The KV writer in-process (deterministic, one attempt per call) against the edge stand-in
as a real HTTP server. The same code under a real Celery worker: test_kv_writer_worker.py.
The KV API fault cases (429 and 5xx, a hang past the timeout, a dropped connection) report
"requested / applied exactly once / lost / duplicated" (tests/support/fault_figures.py)."""

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations.kv_value import CanarySettings
from rollout import kv_writer
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, Environment
from rollout.services import controls
from tests.conftest import NAMESPACES, wait_for
from tests.support.changes import change_config
from tests.support.fault_figures import change_figures, recorded_changes, report

pytestmark = pytest.mark.django_db

B2A = CanarySettings(10, "B2a", False)
B2B = CanarySettings(25, "B2b", False)
EMERGENCY = CanarySettings(0, "B2a", True)


def kv_json(edge, name="production"):
    raw = edge.kv_value(NAMESPACES[name])
    return json.loads(raw) if raw is not None else None


def latest_change(environment) -> ConfigChange:
    return ConfigChange.objects.filter(environment=environment).order_by("-version").first()


def puts(edge):
    return [r for r in edge.requests() if r["method"] == "PUT" and r["status"] == 200]


def reported_figures(edge, environment, case: str) -> dict:
    figures = change_figures(
        edge, environment.kv_namespace_id, recorded_changes(environment), requested=1
    )
    figures["attempts"] = latest_change(environment).attempts
    report(case, figures)
    return figures


def applied_once_lost_duplicated(figures: dict) -> tuple[int, int, int]:
    return figures["applied exactly once"], figures["lost"], figures["duplicated writes"]


def test_it_writes_reads_back_and_hands_over_to_the_edge_watch(edge, production_configured):
    outcome = kv_writer.reconcile(production_configured.pk)
    change = latest_change(production_configured)
    assert outcome.confirm_change_id == change.pk
    assert change.state == "written" and change.attempts == 1
    value = kv_json(edge)
    assert value["canary_percent"] == 10 and value["canary_tag"] == "B2a"
    assert value["emergency_proxy"] is False
    assert value["last_updated"].endswith("Z") and len(value["last_updated"]) == 20
    assert change.kv_value_written == edge.kv_value(NAMESPACES["production"])

    assert kv_writer.confirm(change.pk).retry_in is None
    change.refresh_from_db()
    assert change.state == "in_effect"
    assert change.time_to_effect.total_seconds() > 0
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["config.initial", "config.written", "config.in_effect"]


def test_running_twice_writes_once(edge, production_configured):
    kv_writer.reconcile(production_configured.pk)
    kv_writer.reconcile(production_configured.pk)
    assert len(puts(edge)) == 1
    assert latest_change(production_configured).attempts == 1


def test_a_redelivered_task_finds_kv_already_written_and_does_not_write_again(
    edge, production_configured
):
    kv_writer.reconcile(production_configured.pk)
    change = latest_change(production_configured)
    # As if the worker died after the PUT but before recording it.
    ConfigChange.objects.filter(pk=change.pk).update(state="applying", written_at=None)
    kv_writer.reconcile(production_configured.pk)
    change.refresh_from_db()
    assert change.state == "written"
    assert len(puts(edge)) == 1
    assert "nothing written" in AuditEntry.objects.filter(action="config.written").first().detail


def test_keys_it_does_not_own_survive(edge, production_configured):
    edge.put_external(
        NAMESPACES["production"],
        '{"canary_percent":5,"canary_tag":"B1","emergency_proxy":false,"owner":"team-x",'
        '"routes":{"upload":true}}',
    )
    kv_writer.reconcile(production_configured.pk)
    value = kv_json(edge)
    assert value["owner"] == "team-x" and value["routes"] == {"upload": True}
    assert value["canary_percent"] == 10


def test_a_value_that_is_not_json_is_replaced_and_kept_in_the_record(edge, production_configured):
    edge.put_external(NAMESPACES["production"], "canary=10 (typed by hand)")
    kv_writer.reconcile(production_configured.pk)
    change = latest_change(production_configured)
    assert change.state == "written"
    assert change.kv_value_before == "canary=10 (typed by hand)"
    assert kv_json(edge)["canary_percent"] == 10
    written = AuditEntry.objects.get(action="config.written")
    assert "could not be merged" in written.detail
    assert written.before == {"raw": "canary=10 (typed by hand)"}


def test_429_is_retried_after_the_time_the_api_asks_for(edge, production_configured):
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 3}])
    outcome = kv_writer.reconcile(production_configured.pk)
    assert outcome.retry_in == 3
    change = latest_change(production_configured)
    assert change.state == "applying" and "HTTP 429" in change.last_error
    # Too early: the row says when to try again, and a premature run waits for it.
    early = kv_writer.reconcile(production_configured.pk)
    assert 0 < early.retry_in <= 3
    assert latest_change(production_configured).attempts == 1
    ConfigChange.objects.filter(pk=change.pk).update(next_attempt_at=None)
    assert kv_writer.reconcile(production_configured.pk).confirm_change_id == change.pk
    change.refresh_from_db()
    assert change.state == "written" and change.attempts == 2 and change.last_error == ""
    figures = reported_figures(edge, production_configured, "KV API: 429 with Retry-After")
    assert applied_once_lost_duplicated(figures) == (1, 0, 0)


def _run_until_settled(environment, limit=10):
    for _ in range(limit):
        outcome = kv_writer.reconcile(environment.pk)
        if outcome.retry_in is None:
            return outcome
        ConfigChange.objects.filter(environment=environment).update(next_attempt_at=None)
    raise AssertionError("the writer did not settle")


def test_500_three_times_then_success(edge, production_configured, settings):
    settings.KV_WRITE_MAX_ATTEMPTS = 4
    edge.knobs(kv_faults=[{"method": "PUT", "status": 500}] * 3)
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "written" and change.attempts == 4
    assert kv_json(edge)["canary_percent"] == 10
    figures = reported_figures(edge, production_configured, "KV API: 500 three times in a row")
    assert applied_once_lost_duplicated(figures) == (1, 0, 0)


def test_a_final_failure_is_recorded_with_its_reason(edge, production_configured, settings):
    settings.KV_WRITE_MAX_ATTEMPTS = 3
    edge.knobs(kv_faults=[{"method": "PUT", "status": 503}] * 5)
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "failed"
    assert "gave up after 3 attempts" in change.last_error and "HTTP 503" in change.last_error
    assert AuditEntry.objects.filter(action="config.failed", outcome="failed").count() == 1


def test_a_bad_token_fails_at_once_without_retrying(edge, production_configured, settings):
    settings.CLOUDFLARE_API_TOKEN = "wrong-token"
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "failed" and change.attempts == 1
    assert "10000" in change.last_error and "API token" in change.last_error


@pytest.mark.parametrize(
    "fault, error, case",
    [
        ({"hang": 1.5}, "timed out", "KV API: a write hangs past the timeout"),
        ({"close": True}, "unreachable", "KV API: the connection dropped during a write"),
    ],
    ids=["timeout", "dropped-connection"],
)
def test_a_write_without_an_answer_is_retried(
    edge, production_configured, settings, fault, error, case
):
    settings.HTTP_TIMEOUT_SECONDS = 0.5
    edge.knobs(kv_faults=[{"method": "PUT", **fault}])
    outcome = kv_writer.reconcile(production_configured.pk)
    assert outcome.retry_in is not None
    assert error in latest_change(production_configured).last_error
    _run_until_settled(production_configured)
    assert latest_change(production_configured).state == "written"
    assert kv_json(edge)["canary_percent"] == 10
    figures = reported_figures(edge, production_configured, case)
    assert applied_once_lost_duplicated(figures) == (1, 0, 0)


def test_a_malformed_read_does_not_lose_the_change(edge, production_configured):
    edge.knobs(kv_faults=[{"method": "GET", "status": 200, "body": "<html>bad gateway</html>"}])
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "written"
    assert change.kv_value_before == "<html>bad gateway</html>"
    assert kv_json(edge)["canary_percent"] == 10


def test_an_unreachable_api_is_retried_then_recorded(production_configured, settings):
    settings.CLOUDFLARE_API_BASE_URL = "http://127.0.0.1:9/client/v4"
    settings.KV_WRITE_MAX_ATTEMPTS = 2
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "failed" and "unreachable" in change.last_error


def test_a_newer_version_supersedes_an_older_one_waiting_for_its_retry(edge, production_configured):
    kv_writer.reconcile(production_configured.pk)
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 5}])
    increase = change_config(production_configured, B2B, reason="go B2b", expected_version=1)
    assert kv_writer.reconcile(production_configured.pk).retry_in == 5
    stop = change_config(
        production_configured,
        EMERGENCY,
        kind="emergency_stop",
        reason="5xx spike",
        expected_version=None,
    )
    increase.refresh_from_db()
    assert increase.state == "superseded"
    ConfigChange.objects.update(next_attempt_at=None)
    time.sleep(1.1)  # Workers KV refuses a second write of one key within a second
    kv_writer.reconcile(production_configured.pk)
    # The old retry's task arrives late: it must write nothing.
    kv_writer.reconcile(production_configured.pk)
    stop.refresh_from_db()
    assert stop.state == "written"
    assert kv_json(edge)["emergency_proxy"] is True
    written = [json.loads(r["body"]) for r in puts(edge)]
    assert [value["canary_percent"] for value in written] == [10, 0]


def test_a_conflicting_request_is_refused(production_configured):
    with pytest.raises(controls.ConfigConflict, match="changed since"):
        change_config(production_configured, B2B, reason="stale tab", expected_version=7)
    assert DesiredConfig.objects.get(environment=production_configured).version == 1


def test_an_edge_that_does_not_report_the_change_is_flagged(edge, production_configured, settings):
    settings.PROPAGATION_ALLOWANCE_SECONDS = 0.2
    edge.knobs(propagation_delay=60)
    kv_writer.reconcile(production_configured.pk)
    change = latest_change(production_configured)
    time.sleep(0.3)
    outcome = kv_writer.confirm(change.pk)
    change.refresh_from_db()
    assert outcome.retry_in is not None and change.state == "written"
    assert change.edge_overdue and "edge has not reported it" in change.last_error
    assert AuditEntry.objects.filter(action="config.edge_overdue").count() == 1


def test_the_sweep_finds_work_by_state(edge, production_configured):
    environment_ids, change_ids = kv_writer.due_for_sweep()
    assert environment_ids == [production_configured.pk] and change_ids == []
    kv_writer.reconcile(production_configured.pk)
    environment_ids, change_ids = kv_writer.due_for_sweep()
    assert environment_ids == [] and change_ids == [latest_change(production_configured).pk]


def test_a_burst_of_429_and_5xx_ends_written_once(edge, production_configured, settings):
    settings.KV_WRITE_MAX_ATTEMPTS = 6
    edge.knobs(
        kv_faults=[
            {"method": "PUT", "status": 429, "retry_after": 0},
            {"method": "GET", "status": 502},
            {"method": "PUT", "status": 503},
            {"method": "PUT", "status": 429, "retry_after": 0},
        ]
    )
    _run_until_settled(production_configured)
    change = latest_change(production_configured)
    assert change.state == "written" and change.attempts == 5
    assert len(puts(edge)) == 1
    figures = reported_figures(edge, production_configured, "KV API: a burst of 429, 502 and 503")
    assert applied_once_lost_duplicated(figures) == (1, 0, 0)


# --- the lease of a writer that died --------------------------------------------------------------


def a_dead_writer_holds_the_lease(environment, *, silent_for: float) -> ConfigChange:
    """What a worker killed in the middle of writing version 1 leaves behind: its change
    applying, its lease a minute from expiry, its last heartbeat ``silent_for`` seconds ago."""
    change = latest_change(environment)
    assert change.start_attempt()
    now = timezone.now()
    Environment.objects.filter(pk=environment.pk).update(
        kv_lease_token=uuid.uuid4(),
        kv_lease_until=now + timedelta(seconds=60),
        kv_lease_renewed_at=now - timedelta(seconds=silent_for),
    )
    return change


def lease_token(environment):
    return Environment.objects.values_list("kv_lease_token", flat=True).get(pk=environment.pk)


def test_an_emergency_stop_takes_over_the_lease_of_a_writer_gone_silent(
    edge, production_configured
):
    dead_write = a_dead_writer_holds_the_lease(production_configured, silent_for=10)
    stop = controls.emergency_stop(
        environment=production_configured, reason="5xx spike", system="test"
    )

    outcome = kv_writer.reconcile(production_configured.pk)

    assert outcome.confirm_change_id == stop.pk
    assert kv_json(edge)["emergency_proxy"] is True
    assert lease_token(production_configured) is None  # released after the write
    # The dead writer's PUT may still be applied by the API: the late-write guard watches for it.
    dead_write.refresh_from_db()
    assert dead_write.state == "superseded" and dead_write.unanswered_write_at is not None
    taken_over = AuditEntry.objects.get(action="config.lease_taken_over")
    assert taken_over.actor_label == "kv-writer"
    assert "has not renewed it for 10." in taken_over.detail
    assert "its write of version 1 may still land" in taken_over.detail


def test_a_routine_change_waits_for_the_lease_of_a_writer_gone_silent(edge, production_configured):
    a_dead_writer_holds_the_lease(production_configured, silent_for=10)
    held_by = lease_token(production_configured)
    change_config(production_configured, B2B, reason="phase B2b", expected_version=None)

    assert kv_writer.reconcile(production_configured.pk).retry_in is not None
    assert puts(edge) == []
    assert lease_token(production_configured) == held_by
    assert not AuditEntry.objects.filter(action="config.lease_taken_over").exists()


def test_an_emergency_stop_leaves_the_lease_of_a_writer_that_never_renewed(
    edge, production_configured
):
    """A holder without a heartbeat (a worker of the previous release during a deploy) may be
    alive: nothing says it died."""
    a_dead_writer_holds_the_lease(production_configured, silent_for=10)
    Environment.objects.filter(pk=production_configured.pk).update(kv_lease_renewed_at=None)
    controls.emergency_stop(environment=production_configured, reason="5xx spike", system="test")
    assert kv_writer.reconcile(production_configured.pk).retry_in is not None
    assert puts(edge) == []


@pytest.mark.django_db(transaction=True)
def test_an_emergency_stop_waits_for_a_live_writer_which_then_writes_the_stop(
    edge, production_configured, settings
):
    """The holder's heartbeat goes on while its PUT hangs, so the stop does not take the lease
    from a live writer; the holder follows the newer version itself."""
    settings.KV_LEASE_HEARTBEAT_SECONDS = 0.2
    settings.HTTP_TIMEOUT_SECONDS = 3.0
    settings.KV_WRITE_LEASE_SECONDS = 12
    edge.knobs(kv_faults=[{"method": "PUT", "hang": 2.0}])
    outcomes = []

    def holder():
        try:
            outcomes.append(kv_writer.reconcile(production_configured.pk))
        finally:
            connection.close()

    writing = threading.Thread(target=holder)
    writing.start()
    wait_for(lambda: edge.requests("PUT"), message="the holder's PUT to arrive")
    time.sleep(1.0)  # five heartbeats into the hang: silent by now, were it not renewing
    stop = controls.emergency_stop(
        environment=production_configured, reason="5xx spike", system="test"
    )

    waited = kv_writer.reconcile(production_configured.pk)

    assert waited.retry_in is not None
    assert [json.loads(r["body"])["emergency_proxy"] for r in edge.requests("PUT")] == [False]
    writing.join(timeout=15)
    assert outcomes, "the holder did not finish"
    # The holder went on to the stop itself; KV's one write a second may have asked it to wait.
    for _ in range(5):
        outcome = kv_writer.reconcile(production_configured.pk)
        if outcome.retry_in is None:
            break
        ConfigChange.objects.filter(pk=stop.pk).update(next_attempt_at=None)
        time.sleep(min(outcome.retry_in, 1.1))
    assert outcome.confirm_change_id == stop.pk
    assert kv_json(edge)["emergency_proxy"] is True
    assert not AuditEntry.objects.filter(action="config.lease_taken_over").exists()


def test_a_heartbeat_too_slow_for_the_lease_is_a_configuration_error(settings):
    from rollout.checks import kv_writer_settings

    settings.KV_LEASE_HEARTBEAT_SECONDS = 2  # three beats are longer than the 4 s lease
    assert [error.id for error in kv_writer_settings(None)] == ["rollout.E003"]
    settings.KV_LEASE_HEARTBEAT_SECONDS = 1
    assert kv_writer_settings(None) == []
