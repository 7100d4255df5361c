"""The automatic emergency stop end to end: the edge stand-in's native cohort fails, its Logpush
files are ingested by a real worker, the critical rule fires and presses the stop, the stop is
written to KV and reaches the edge, the native cohort empties and the alert resolves."""

import json
import time

import pytest

from integrations.kv_value import CanarySettings
from metrics import alerts
from metrics.models import AlertEvent, AlertState, LogSource
from metrics.tasks import ingest_logs
from outbox.models import Notification
from rollout.models import AuditEntry, ConfigChange
from tests.conftest import NAMESPACES, wait_for
from tests.support.changes import first_config, in_effect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
RULE = "native-5xx-critical"


@pytest.fixture
def logs(tmp_path, production):
    return LogSource.objects.create(
        environment=production,
        kind=LogSource.Kind.DIRECTORY,
        directory=str(tmp_path / "production"),
    )


def write_logs(edge, tmp_path, *, minutes, end):
    response = edge.client.post(
        "/_standin/logpush/write",
        json={"env": "production", "minutes": minutes, "end": end, "directory": str(tmp_path)},
    )
    response.raise_for_status()
    return response.json()


def alert_state():
    state = AlertState.objects.filter(rule__name=RULE).first()
    return state.state if state else None


def test_a_failing_native_cohort_stops_itself(
    edge, production, logs, tmp_path, start_worker, slack_receiver, pagerduty_receiver, settings
):
    start_worker(
        env={
            "METRICS_ALERT_SETTLE_MINUTES": 0,
            "METRICS_INGEST_PROCESSES": 1,
            "SLACK_INCIDENTS_WEBHOOK_URL": settings.SLACK_INCIDENTS_WEBHOOK_URL,
            "PAGERDUTY_EVENTS_URL": settings.PAGERDUTY_EVENTS_URL,
            "PAGERDUTY_ROUTING_KEY": settings.PAGERDUTY_ROUTING_KEY,
        }
    )
    initial = first_config(production, CanarySettings(10, "B2a", False), reason="phase B2a")
    in_effect(initial)
    policy = alerts.policy_for(production.service)
    policy.auto_emergency_stop = True
    policy.save()
    # The native handlers fail one request in five.
    edge.client.post(
        "/_standin/traffic",
        json={
            "requests_per_minute": 600,
            "native": {"error_rate": 0.2},
            "proxy": {"error_rate": 0},
        },
    ).raise_for_status()
    now = time.time()
    written = write_logs(edge, tmp_path, minutes=6, end=now)
    assert written["requests"]["native"]["errors_5xx"] > 0

    ingest_logs.delay(logs.pk)  # ingestion, then the alert evaluation it queues

    stop = wait_for(
        lambda: ConfigChange.objects.filter(
            environment=production, kind=ConfigChange.Kind.EMERGENCY_STOP
        ).first(),
        timeout=30,
        message="the rule to press the emergency stop",
    )
    assert stop.requested_by is None and stop.requested_by_system == f"rule:{RULE}"
    assert "native 5xx" in stop.reason
    in_effect(stop)
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["emergency_proxy"] is True
    assert alert_state() == AlertState.State.FIRING
    entry = AuditEntry.objects.get(action="config.emergency_stop")
    assert entry.actor is None and entry.actor_label == f"rule:{RULE}"
    firing = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing")
    assert firing.emergency_stop_id == stop.pk

    # With the stop in effect the edge sends everyone to proxy: the native 5xx are gone.
    after = write_logs(edge, tmp_path, minutes=3, end=now + 180)
    assert after["requests"]["native"]["requests"] == 0
    ingest_logs.delay(logs.pk)
    # Without native traffic the rule cannot judge: it says so, and nothing is resolved.
    wait_for(
        lambda: alert_state() == AlertState.State.NOT_ENOUGH_TRAFFIC,
        timeout=30,
        message="the alert to say there is not enough traffic",
    )
    wait_for(
        lambda: (
            Notification.objects.exists()
            and not Notification.objects.exclude(state="sent").exists()
            and len(pagerduty_receiver.received) >= 1
        ),
        timeout=20,
        message="the announcements to be delivered",
    )
    texts = [body["text"] for body in slack_receiver.bodies()]
    assert any("EMERGENCY STOP triggered automatically" in text for text in texts)
    assert any(f"{RULE} is firing" in text for text in texts)
    assert not any(f"{RULE} resolved" in text for text in texts)
    actions = [
        body["event_action"]
        for body in pagerduty_receiver.bodies()
        if body["dedup_key"].endswith(RULE)
    ]
    assert actions == ["trigger"]
    # The stop stays on: lifting it is a person's decision.
    assert ConfigChange.objects.filter(environment=production).count() == 2


def test_without_the_opt_in_the_rule_only_alerts(
    edge, production, logs, tmp_path, start_worker, settings
):
    start_worker(env={"METRICS_ALERT_SETTLE_MINUTES": 0, "METRICS_INGEST_PROCESSES": 1})
    initial = first_config(production, CanarySettings(10, "B2a", False), reason="phase B2a")
    in_effect(initial)
    edge.client.post(
        "/_standin/traffic", json={"requests_per_minute": 600, "native": {"error_rate": 0.2}}
    ).raise_for_status()
    write_logs(edge, tmp_path, minutes=6, end=time.time())
    ingest_logs.delay(logs.pk)
    wait_for(
        lambda: alert_state() == AlertState.State.FIRING, timeout=30, message="the alert to fire"
    )
    time.sleep(0.5)
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()
