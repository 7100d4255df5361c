"""Alert rules on synthetic minute buckets: each fires only after its "for" duration, resolves,
and respects the traffic guard."""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.histogram import Histogram
from metrics import alerts
from metrics.models import AlertEvent, AlertRule, AlertState, LogSource, MinuteBucket, WorkerMinute
from outbox.models import Notification
from rollout.models import DesiredConfig
from tests.conftest import make_environment

pytestmark = pytest.mark.django_db
BASE = datetime(2025, 11, 12, 14, 0, tzinfo=UTC)


def at(n: int, base: datetime = BASE) -> datetime:
    return base + timedelta(minutes=n)


@pytest.fixture(autouse=True)
def no_settling(settings):
    settings.METRICS_ALERT_SETTLE_MINUTES = 0
    # These tests write whole minutes ahead of the newest log line and judge settled minutes
    # only: a minute not settled never proves a breach here (tests/metrics/test_early_judgement.py
    # judges those).
    settings.METRICS_PARTIAL_VOLUME_MARGIN = 0


@pytest.fixture
def env(edge):
    environment = make_environment(edge)
    DesiredConfig.objects.create(environment=environment, canary_percent=10, canary_tag="B2a")
    LogSource.objects.create(environment=environment, kind="directory", directory="/nonexistent")
    return environment


def minute_of_traffic(
    env,
    n,
    *,
    native=100,
    native_5xx=0,
    native_ms=200,
    proxy=900,
    proxy_5xx=0,
    proxy_ms=200,
    uploads=None,
    base=BASE,
):
    for cohort, requests, errors, ms in (
        ("native", native, native_5xx, native_ms),
        ("proxy", proxy, proxy_5xx, proxy_ms),
    ):
        if requests:
            histogram = Histogram()
            histogram.add(ms, requests)
            MinuteBucket.objects.update_or_create(
                environment=env,
                minute=at(n, base),
                cohort=cohort,
                defaults={
                    "requests": requests,
                    "errors_5xx": errors,
                    "ttfb_histogram": histogram.to_bytes(),
                },
            )
    if uploads is not None:
        WorkerMinute.objects.update_or_create(
            environment=env, minute=at(n, base), defaults={"events": 10, "upload_errors": uploads}
        )


def logs_until(env, n):
    """Logs are in up to minute ``n``: minutes before it are judged."""
    LogSource.objects.filter(environment=env).update(newest_log_at=at(n) + timedelta(seconds=5))


def evaluate(env, n):
    logs_until(env, n)
    return alerts.evaluate_environment(env.pk, now=at(n) + timedelta(seconds=30))


def state_of(env, name):
    state = AlertState.objects.filter(environment=env, rule__name=name).first()
    return state.state if state else "inactive"


def transitions(env, name):
    return [
        (event.old_state, event.new_state, event.minute)
        for event in AlertEvent.objects.filter(environment=env, alert__rule__name=name).order_by(
            "id"
        )
    ]


def test_the_runbook_rules_are_the_defaults(env):
    policy = alerts.policy_for(env.service)
    rules = {
        rule.name: (rule.kind, rule.threshold, rule.for_minutes, rule.severity)
        for rule in policy.rules.all()
    }
    assert rules["native-5xx-warning"] == ("native_5xx_rate", 1.5, 5, "warning")
    assert rules["native-5xx-critical"] == ("native_5xx_rate", 3.0, 3, "critical")
    assert rules["native-p90"] == ("native_p90", 600, 10, "warning")
    assert rules["native-p90-vs-proxy"] == ("native_p90_vs_proxy", 20, 5, "warning")
    assert rules["r2-upload-errors"] == ("r2_upload_errors", 5, 3, "critical")
    assert rules["cohort-share"][1] == 5 and rules["volume-drop"][1] == 30
    assert policy.auto_emergency_stop is False


def test_critical_5xx_fires_only_after_three_minutes_and_resolves(env):
    for n in range(10):
        minute_of_traffic(env, n, native=1000, native_5xx=5)
    evaluate(env, 10)
    assert state_of(env, "native-5xx-critical") == "inactive"
    for n in (10, 11, 12):
        minute_of_traffic(env, n, native=1000, native_5xx=50)  # 5%
    evaluate(env, 11)
    assert state_of(env, "native-5xx-critical") == "pending"
    evaluate(env, 12)
    assert state_of(env, "native-5xx-critical") == "pending"
    evaluate(env, 13)
    assert state_of(env, "native-5xx-critical") == "firing"
    state = AlertState.objects.get(environment=env, rule__name="native-5xx-critical")
    assert state.figures["native_5xx_percent"] == 5.0 and state.figures["native_requests"] == 1000
    # The warning needs five minutes above 1.5%: only three so far.
    assert state_of(env, "native-5xx-warning") == "pending"

    minute_of_traffic(env, 13, native=1000, native_5xx=5)
    evaluate(env, 14)
    assert state_of(env, "native-5xx-critical") == "resolved"
    assert state_of(env, "native-5xx-warning") == "inactive"
    assert transitions(env, "native-5xx-critical") == [
        ("inactive", "pending", at(10)),
        ("pending", "firing", at(12)),
        ("firing", "resolved", at(13)),
    ]


def test_a_backlog_is_replayed_minute_by_minute(env):
    for n in range(6):
        minute_of_traffic(env, n, native=1000, native_5xx=40)
    events = evaluate(env, 6)
    names = [(e.alert.rule.name, e.new_state) for e in events]
    assert ("native-5xx-critical", "firing") in names and ("native-5xx-warning", "firing") in names
    assert evaluate(env, 6) == [], "judging the same minutes again changes nothing"


def test_a_catch_up_shows_each_change_at_its_own_minute(env, settings):
    """The worker was stopped while the cohort share wavered around its limit: judged together
    on its return, each change stands at its own minute, newest first, as the history lists
    them, not all at the moment of the catch-up."""
    settings.METRICS_ALERT_SETTLE_MINUTES = 1
    for n in range(3):
        minute_of_traffic(env, n, native=100, proxy=900)
    evaluate(env, 3)
    for n in range(3, 9):
        off_plan = n in (4, 6)  # 20% against a 10% plan, then back
        minute_of_traffic(env, n, native=200 if off_plan else 100, proxy=800 if off_plan else 900)
    evaluate(env, 20)
    shown = [
        (event.created_at, event.old_state, event.new_state, event.minute)
        for event in AlertEvent.objects.filter(environment=env, alert__rule__name="cohort-share")
        if event.minute >= at(3)
    ]
    # Each at the end of its minute and the one minute of settling.
    assert shown == [
        (at(11), "inactive", "unjudged", at(9)),
        (at(9), "pending", "inactive", at(7)),
        (at(8), "inactive", "pending", at(6)),
        (at(7), "pending", "inactive", at(5)),
        (at(6), "inactive", "pending", at(4)),
    ]


def test_three_requests_do_not_page_anyone(env):
    for n in range(10):
        minute_of_traffic(env, n, native=3, native_5xx=2, proxy=900)
    evaluate(env, 10)
    assert state_of(env, "native-5xx-critical") == "unjudged"
    state = AlertState.objects.get(environment=env, rule__name="native-5xx-critical")
    assert state.figures["below_guard"] is True
    assert not AlertEvent.objects.filter(
        environment=env, alert__rule__kind="native_5xx_rate", new_state__in=["pending", "firing"]
    ).exists()
    assert not Notification.objects.exists()


def announcements(name):
    return list(
        Notification.objects.filter(subject__contains=name)
        .order_by("id")
        .values_list("channel", "subject")
    )


def test_a_firing_alert_without_traffic_is_not_resolved(env, slack_receiver, pagerduty_receiver):
    """After the emergency stop native traffic falls below the guard: the alert cannot be
    judged, so it says so and stays open; only a real recovery resolves and announces it."""
    name = "native-5xx-critical"
    for n in range(3):
        minute_of_traffic(env, n, native=1000, native_5xx=50)
    evaluate(env, 3)
    assert state_of(env, name) == "firing"
    fired = announcements(name)
    assert [channel for channel, _ in fired] == ["slack_incidents", "pagerduty"]

    for n in range(3, 8):  # the stop is in effect: almost no native traffic
        minute_of_traffic(env, n, native=2, native_5xx=0, proxy=1000)
    evaluate(env, 8)
    state = AlertState.objects.get(environment=env, rule__name=name)
    assert state.state == "unjudged" and state.awaiting_recovery
    assert state.get_state_display() == "Not enough traffic to judge"
    assert announcements(name) == fired, "no resolve message without a recovery"

    for n in range(8, 10):  # native traffic is back, still failing: firing, not paged again
        minute_of_traffic(env, n, native=1000, native_5xx=50)
    evaluate(env, 10)
    assert state_of(env, name) == "firing"
    assert announcements(name) == fired

    minute_of_traffic(env, 10, native=1000, native_5xx=0)  # a real recovery
    evaluate(env, 11)
    minute_of_traffic(env, 11, native=1000, native_5xx=0)
    evaluate(env, 12)
    assert state_of(env, name) == "resolved"
    resolved = announcements(name)[len(fired) :]
    assert [channel for channel, _ in resolved] == ["slack_incidents", "pagerduty"]
    assert "resolved" in resolved[0][1] and resolved[1][1].startswith("resolve:")
    assert [(old, new) for old, new, _ in transitions(env, name)][-5:] == [
        ("unjudged", "pending"),  # the minute before had no traffic at all
        ("pending", "firing"),
        ("firing", "unjudged"),
        ("unjudged", "firing"),
        ("firing", "resolved"),
    ]


def test_a_pending_alert_without_traffic_starts_over(env):
    name = "native-5xx-critical"
    for n in range(2):
        minute_of_traffic(env, n, native=1000, native_5xx=50)
    minute_of_traffic(env, 2, native=2, native_5xx=2)
    minute_of_traffic(env, 3, native=1000, native_5xx=50)
    evaluate(env, 4)
    assert state_of(env, name) == "pending", "a minute without enough traffic broke the run"
    minute_of_traffic(env, 4, native=1000, native_5xx=0)
    evaluate(env, 5)
    assert state_of(env, name) == "inactive"
    assert not announcements(name)


def test_the_guard_is_the_policys_to_set(env):
    policy = alerts.policy_for(env.service)
    policy.min_requests_per_minute = 2
    policy.save()
    for n in range(4):
        minute_of_traffic(env, n, native=3, native_5xx=2, proxy=900)
    evaluate(env, 4)
    assert state_of(env, "native-5xx-critical") == "firing"


def fires_after(env, rule, minutes, **traffic):
    """``minutes`` minutes of ``traffic``: ``rule`` is pending a minute before it fires."""
    for n in range(minutes):
        minute_of_traffic(env, n, **traffic)
    evaluate(env, minutes - 1)
    assert state_of(env, rule) == "pending"
    evaluate(env, minutes)
    assert state_of(env, rule) == "firing"


def test_native_p90_fires_after_ten_minutes(env):
    fires_after(env, "native-p90", 10, native_ms=700, proxy_ms=650)
    assert state_of(env, "native-p90-vs-proxy") == "inactive"  # 700 vs 650 is under 20%


def test_native_p90_against_proxy(env):
    fires_after(env, "native-p90-vs-proxy", 5, native_ms=300, proxy_ms=200)
    state = AlertState.objects.get(environment=env, rule__name="native-p90-vs-proxy")
    assert 45 < state.value < 55


def test_upload_errors_above_five_a_minute_for_three_minutes(env):
    for n in range(3):
        minute_of_traffic(env, n, uploads=5)
    evaluate(env, 3)
    assert state_of(env, "r2-upload-errors") == "inactive"  # five is not above five
    for n in range(3, 6):
        minute_of_traffic(env, n, uploads=6)
    evaluate(env, 6)
    assert state_of(env, "r2-upload-errors") == "firing"


def test_cohort_share_off_plan(env):
    for n in range(10):
        minute_of_traffic(env, n, native=200, proxy=800)  # 20% against a 10% plan
    evaluate(env, 10)
    assert state_of(env, "cohort-share") == "firing"
    state = AlertState.objects.get(environment=env, rule__name="cohort-share")
    assert state.figures["plan_percent"] == 10 and state.value == pytest.approx(10.0)


def test_cohort_share_within_plan_stays_quiet(env):
    for n in range(10):
        minute_of_traffic(env, n, native=130, proxy=870)  # 13%: within 5 points
    evaluate(env, 10)
    assert state_of(env, "cohort-share") == "inactive"


def test_volume_drop_against_the_hour_before(env):
    for n in range(60):
        minute_of_traffic(env, n, native=100, proxy=900)
    for n in range(60, 130):
        minute_of_traffic(env, n, native=50, proxy=450)
    evaluate(env, 75)
    assert state_of(env, "volume-drop") == "inactive"  # the hour is only partly lower yet
    evaluate(env, 130)
    assert state_of(env, "volume-drop") == "firing"


def test_logs_not_delivering(env):
    LogSource.objects.filter(environment=env).update(newest_log_at=at(0))
    alerts.evaluate_environment(env.pk, now=at(10))
    assert state_of(env, "logs-not-delivering") == "inactive"
    alerts.evaluate_environment(env.pk, now=at(16))
    assert state_of(env, "logs-not-delivering") == "firing"
    LogSource.objects.filter(environment=env).update(newest_log_at=at(17))
    alerts.evaluate_environment(env.pk, now=at(18))
    assert state_of(env, "logs-not-delivering") == "resolved"


def test_a_disabled_rule_is_not_judged(env):
    alerts.policy_for(env.service)
    AlertRule.objects.filter(name="native-5xx-critical").update(enabled=False)
    for n in range(5):
        minute_of_traffic(env, n, native=1000, native_5xx=100)
    evaluate(env, 5)
    assert state_of(env, "native-5xx-critical") == "inactive"
    assert state_of(env, "native-5xx-warning") == "firing"


def test_a_concurrent_evaluation_that_lost_the_race_writes_nothing(env):
    for n in range(4):
        minute_of_traffic(env, n, native=1000, native_5xx=100)
    logs_until(env, 4)
    alerts.evaluate_environment(env.pk, now=at(4))
    state = AlertState.objects.get(environment=env, rule__name="native-5xx-critical")
    events = AlertEvent.objects.count()
    # An evaluator that read the state before the first one wrote it: its version is stale.
    stale = AlertState.objects.get(pk=state.pk)
    stale.version -= 1
    stale.state, stale.last_minute = "inactive", None
    rule = stale.rule
    reading = alerts.Reading(10.0, True, {"minute": at(3).isoformat()})
    at_stale = alerts.Position(stale.state, stale.since, stale.awaiting_recovery)
    judgement = alerts.walk(rule, at_stale, stale.last_minute, [(at(3), reading)])
    written = alerts._apply(stale, rule, rule.policy, env, judgement, at(4))
    assert written == []
    assert AlertEvent.objects.count() == events
