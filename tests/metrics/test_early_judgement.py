"""Judging before a minute settles: a native-5xx minute whose files are still arriving fires a
rule only when the breach is certain, late files are judged when the minute settles, and
overwhelming evidence (opt-in) fires the critical rule without its duration, on the native
slices of seconds from where the failure starts."""

from datetime import timedelta

import pytest

from integrations.logpush import SLICE_SECONDS
from metrics import alerts, ingest
from metrics.models import AlertEvent, LogSource, NativeSlice
from outbox.models import Notification
from rollout.models import AuditEntry, ConfigChange
from tests.metrics.conftest import START, generate, write_batches
from tests.metrics.test_alert_rules import at, env, minute_of_traffic, state_of, transitions

pytestmark = pytest.mark.django_db
RULE = "native-5xx-critical"
__all__ = ["env"]  # the fixture, shared with the settled rules' tests


@pytest.fixture(autouse=True)
def settling(settings):
    settings.METRICS_ALERT_SETTLE_MINUTES = 1
    settings.METRICS_PARTIAL_VOLUME_MARGIN = 1.5


def logs_reach(env, n, seconds):
    """The newest log line is ``seconds`` into minute ``n``: minutes before n - 1 are settled,
    n - 1 and n are still arriving."""
    newest = at(n) + timedelta(seconds=seconds)
    LogSource.objects.filter(environment=env).update(newest_log_at=newest)
    return alerts.evaluate_environment(env.pk, now=newest + timedelta(seconds=2))


def healthy_then_failing(env):
    """Ten healthy minutes of 1,000 native requests, then two whole minutes at 10%."""
    for n in range(10):
        minute_of_traffic(env, n, native=1000, native_5xx=2)
    for n in (10, 11):
        minute_of_traffic(env, n, native=1000, native_5xx=100)


def minute_12_proves_it(env) -> str:
    """700 of minute 12's lines are in: 70 5xx of at most 1,500 requests is 4.7% at the least."""
    minute_of_traffic(env, 12, native=700, native_5xx=70)
    logs_reach(env, 12, 42)
    return state_of(env, RULE)


def test_a_minute_still_arriving_fires_when_the_breach_is_certain(env):
    healthy_then_failing(env)
    assert minute_12_proves_it(env) == "firing"
    assert [(old, new, minute) for old, new, minute in transitions(env, RULE)] == [
        ("inactive", "pending", at(10)),
        ("pending", "firing", at(12)),
    ]
    firing = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing")
    assert firing.figures["settled"] is False
    assert firing.figures["certain_5xx_percent"] == 4.67
    assert firing.figures["most_requests"] == 1500
    # The minute settles with the same lines: nothing moves, nothing is announced twice.
    logs_reach(env, 14, 5)
    assert state_of(env, RULE) == "firing"
    assert AlertEvent.objects.filter(alert__rule__name=RULE).count() == 2


def test_it_waits_while_the_lines_in_do_not_prove_the_breach(env):
    healthy_then_failing(env)
    # 10% of the 300 lines in, but the other 1,200 could all succeed: 2% at the least.
    minute_of_traffic(env, 12, native=300, native_5xx=30)
    logs_reach(env, 12, 20)
    assert state_of(env, RULE) == "pending"
    # The next file brings 400 more lines of minute 12.
    assert minute_12_proves_it(env) == "firing"


def test_a_minute_still_arriving_never_resolves_a_firing_alert(env):
    healthy_then_failing(env)
    minute_of_traffic(env, 12, native=1000, native_5xx=100)
    logs_reach(env, 13, 1)
    assert state_of(env, RULE) == "firing"
    # Minutes 13 and 14 are healthy, but 14 is still arriving: only 13, once settled, resolves.
    minute_of_traffic(env, 13, native=1000, native_5xx=0)
    minute_of_traffic(env, 14, native=900, native_5xx=0)
    logs_reach(env, 14, 50)
    assert state_of(env, RULE) == "firing"
    logs_reach(env, 15, 5)
    assert state_of(env, RULE) == "resolved"


def test_late_files_after_a_partial_judgement_are_judged_when_the_minute_settles(env):
    healthy_then_failing(env)
    assert minute_12_proves_it(env) == "firing"
    # A late file brings 2,000 more healthy requests of minute 12, more than any minute had:
    # settled, the minute is 70 of 2,700 (2.6%), and the alert resolves.
    minute_of_traffic(env, 12, native=2700, native_5xx=70)
    minute_of_traffic(env, 13, native=1000, native_5xx=100)
    logs_reach(env, 14, 5)
    assert [(old, new) for old, new, _ in transitions(env, RULE)] == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]
    assert AlertEvent.objects.get(new_state="resolved", alert__rule__name=RULE).minute == at(12)


def test_no_recent_settled_minutes_no_early_judgement(env):
    # A new source: nothing settled to bound a minute's volume by.
    for n in range(3):
        minute_of_traffic(env, n, native=1000, native_5xx=500)
    logs_reach(env, 0, 50)
    assert state_of(env, RULE) == "unjudged"
    # Minute 0 settled gives the bound: minutes 1 and 2, still arriving, are certain breaches.
    logs_reach(env, 2, 59)
    assert state_of(env, RULE) == "firing"


# --- overwhelming evidence -------------------------------------------------------------------


@pytest.fixture
def stopping_policy(env):
    policy = alerts.policy_for(env.service)
    policy.auto_emergency_stop = True
    policy.save()
    return policy


def evidence_on(policy, **changes):
    policy.overwhelming_evidence = True
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()


def seconds_of_traffic(env, n, *parts):
    """Minute ``n`` as parts (first second, end second, native requests, native 5xx), as
    ingestion stores them: the minute's bucket holds their sum, and each part's requests and 5xx
    are spread evenly over its slices of seconds."""
    minute_of_traffic(
        env, n, native=sum(part[2] for part in parts), native_5xx=sum(part[3] for part in parts)
    )
    for first, end, requests, errors in parts:
        starts = range(first, end, SLICE_SECONDS)
        for index, second in enumerate(starts):
            NativeSlice.objects.update_or_create(
                environment=env,
                start=at(n) + timedelta(seconds=second),
                defaults={
                    "requests": requests // len(starts) + (index < requests % len(starts)),
                    "errors_5xx": errors // len(starts) + (index < errors % len(starts)),
                },
            )


def healthy_minutes(env, native, minutes=range(10)):
    for n in minutes:
        seconds_of_traffic(env, n, (0, 60, native, native // 500))  # 0.2%


def a_bad_minute_arriving(env):
    """Healthy minutes, then 40 seconds of minute 10 with a quarter of native requests failing."""
    healthy_minutes(env, 1000)
    seconds_of_traffic(env, 10, (0, 40, 700, 175))
    return logs_reach(env, 10, 40)


def test_without_the_opt_in_the_rule_waits_out_its_duration(env, stopping_policy):
    assert stopping_policy.overwhelming_evidence is False, "off unless chosen"
    a_bad_minute_arriving(env)
    # Minute 10 is a certain breach, but minute 9 before it is still arriving and healthy.
    assert state_of(env, RULE) == "inactive"
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()


def test_overwhelming_evidence_fires_at_once_and_says_so(
    env, stopping_policy, slack_receiver, pagerduty_receiver
):
    stopping_policy.overwhelming_evidence = True
    stopping_policy.save()
    a_bad_minute_arriving(env)
    assert state_of(env, RULE) == "firing"
    firing = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing")
    figures = firing.figures
    assert figures["overwhelming_evidence"] is True
    assert figures["evidence_requests"] == 700 and figures["evidence_5xx"] == 175
    assert figures["evidence_needed_percent"] == 9.0
    assert 19 < figures["evidence_lower_bound_percent"] < 25
    stop = ConfigChange.objects.get(kind=ConfigChange.Kind.EMERGENCY_STOP)
    assert firing.emergency_stop == stop
    entry = AuditEntry.objects.get(action="config.emergency_stop")
    assert "overwhelming evidence" in entry.reason and "175 5xx of 700" in entry.reason
    subjects = list(Notification.objects.values_list("subject", flat=True))
    assert any("is firing on overwhelming evidence" in subject for subject in subjects)
    assert any("EMERGENCY STOP" in s and "on overwhelming evidence" in s for s in subjects)
    # The settled minutes after it keep it firing; nothing fires twice.
    minute_of_traffic(env, 10, native=1000, native_5xx=250)
    minute_of_traffic(env, 11, native=1000, native_5xx=250)
    logs_reach(env, 12, 5)
    assert state_of(env, RULE) == "firing"
    assert AlertEvent.objects.filter(alert__rule__name=RULE, new_state="firing").count() == 1


def test_evidence_below_the_multiple_or_the_volume_waits(env, stopping_policy):
    stopping_policy.overwhelming_evidence = True
    stopping_policy.overwhelming_min_requests = 2000
    stopping_policy.save()
    # 700 requests of the fault: to reach 2,000 the evidence must take in healthy minutes.
    a_bad_minute_arriving(env)
    assert state_of(env, RULE) == "inactive"
    stopping_policy.overwhelming_min_requests = 200
    stopping_policy.overwhelming_multiple = 8  # 24%: the lower bound is about 22%
    stopping_policy.save()
    seconds_of_traffic(env, 10, (0, 50, 800, 200))
    logs_reach(env, 10, 45)
    assert state_of(env, RULE) == "inactive"
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()
    stopping_policy.overwhelming_multiple = 3  # 9%: the same lines are overwhelming
    stopping_policy.save()
    logs_reach(env, 10, 46)
    assert state_of(env, RULE) == "firing"
    assert ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()


# A fault that starts 20 seconds into minute 10: 15,000 native requests a minute (250 a second),
# 0.2% 5xx before it, 10% after. At 10% the 99.9% lower bound passes 9% only with about 7,900
# requests: more than 20 seconds of the fault, fewer than 40.
HEALTHY = (0, 20, 5000, 10)


def fault_seconds(env, seconds):
    """The fault's first ``seconds`` are in (from 14:10:20); the newest line is in their last."""
    requests = 250 * seconds
    seconds_of_traffic(env, 10, HEALTHY, (20, 20 + seconds, requests, requests // 10))
    return logs_reach(env, 10, 19 + seconds)


def test_a_fault_starting_mid_minute_fires_on_its_own_slices_once_enough_are_in(
    env, stopping_policy, slack_receiver
):
    evidence_on(stopping_policy)
    healthy_minutes(env, 15000)
    fault_seconds(env, 20)  # 5,000 requests at 10%: too few to prove 9%
    assert state_of(env, RULE) != "firing"
    # 40 seconds of the fault: 10,000 requests, 1,000 5xx. The minute as a whole (15,000
    # requests, 1,010 5xx: 6.7%) proves nothing; its slices from 14:10:20 on do.
    fault_seconds(env, 40)
    assert state_of(env, RULE) == "firing"
    firing = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing")
    figures = firing.figures
    assert figures["evidence_from"] == (at(10) + timedelta(seconds=20)).isoformat()
    assert (figures["evidence_requests"], figures["evidence_5xx"]) == (10000, 1000)
    assert 9.0 < figures["evidence_lower_bound_percent"] < 9.5
    reason = AuditEntry.objects.get(action="config.emergency_stop").reason
    assert "1000 5xx of 10000 native requests since 14:10:20 UTC" in reason
    message = Notification.objects.get(
        channel=Notification.Channel.SLACK_INCIDENTS,
        related_object=f"alert-event:{firing.public_id}",
    )
    fields = [field["text"] for field in message.payload["blocks"][1]["fields"]]
    assert "*Evidence since (UTC)*\n2025-11-12 14:10:20" in fields


def test_off_by_default_and_fires_once_turned_on(env, stopping_policy):
    assert stopping_policy.overwhelming_evidence is False
    healthy_minutes(env, 15000)
    fault_seconds(env, 40)
    assert state_of(env, RULE) == "inactive"  # the runbook rule: three minutes above 3%
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()
    evidence_on(stopping_policy)
    logs_reach(env, 10, 59)
    assert state_of(env, RULE) == "firing"
    assert ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()


def test_a_late_file_brings_the_start_of_the_evidence(env, stopping_policy):
    """The file of 14:10:00-14:10:40 lands after the one of 14:10:40-14:11:40; each adds its
    lines to the slices, and the evidence rests on both."""
    evidence_on(stopping_policy)
    healthy_minutes(env, 7500)
    # The fault starts at 14:10:20, at 10% of 7,500 native requests a minute (1,250 a slice).
    seconds_of_traffic(env, 10, (40, 60, 2500, 250))
    seconds_of_traffic(env, 11, (0, 40, 5000, 500))
    logs_reach(env, 11, 40)
    assert state_of(env, RULE) != "firing"  # 7,500 requests: not enough at 10%
    seconds_of_traffic(env, 10, (0, 20, 2500, 5), (20, 60, 5000, 500))  # the late file
    logs_reach(env, 11, 40)
    assert state_of(env, RULE) == "firing"
    figures = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing").figures
    assert figures["evidence_from"] == (at(10) + timedelta(seconds=20)).isoformat()
    assert (figures["evidence_requests"], figures["evidence_5xx"]) == (10000, 1000)


def test_the_minute_the_evidence_starts_in_does_not_resolve_it(env, stopping_policy):
    """A fault from 14:10:50 leaves minute 10 under the threshold; it preceded the incident."""
    evidence_on(stopping_policy)
    healthy_minutes(env, 15000)
    seconds_of_traffic(env, 10, (0, 50, 12500, 25), (50, 60, 2500, 250))  # 1.8%
    seconds_of_traffic(env, 11, (0, 30, 7500, 750))
    logs_reach(env, 11, 30)
    assert state_of(env, RULE) == "firing"
    firing = AlertEvent.objects.get(alert__rule__name=RULE, new_state="firing")
    assert firing.figures["evidence_from"] == (at(10) + timedelta(seconds=50)).isoformat()
    seconds_of_traffic(env, 11, (0, 60, 15000, 1500))
    seconds_of_traffic(env, 12, (0, 60, 15000, 1500))
    logs_reach(env, 13, 5)  # minutes 10, 11 and 12 settled
    assert state_of(env, RULE) == "firing"
    assert [new for _, new, _ in transitions(env, RULE)] == ["firing"]
    assert AlertEvent.objects.filter(alert__rule__name=RULE).count() == 1


@pytest.mark.parametrize("percent", [0.5, 1.5, 2.5])
def test_healthy_traffic_never_fires_on_evidence(env, stopping_policy, tmp_path, percent):
    """Twenty minutes of Logpush files of one minute each, ingested and judged one by one as
    the task does: native slices are stored, and nothing fires."""
    evidence_on(stopping_policy, overwhelming_min_requests=200)
    LogSource.objects.filter(environment=env).update(directory=str(tmp_path))
    source = LogSource.objects.get(environment=env)
    batches = generate(
        minutes=20,
        file_minutes=1,
        start=START,
        rpm=12000,
        native={"error_rate": percent / 100},
        proxy={"rate_factor": 0.05},
    )
    for batch in batches:
        write_batches(str(tmp_path), [batch])
        assert ingest.ingest_source(source.pk, processes=1).counted == 2
        alerts.evaluate_environment(env.pk, now=at(20))
        assert state_of(env, RULE) != "firing"
    assert NativeSlice.objects.filter(environment=env).count() == 20 * 6
    assert not AlertEvent.objects.filter(alert__rule__name=RULE, new_state="firing").exists()
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).exists()
