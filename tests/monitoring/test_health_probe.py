"""The health check the observation records from its probe of /api/qa: against the edge
stand-in, and against a deliberately misbehaving local server where every malformed answer must be
a failed check with its reason."""

import time
from datetime import timedelta

import pytest
from django.utils import translation

from integrations.edge import read_qa
from monitoring import tasks
from monitoring.models import CohortSample, HealthCheck
from monitoring.observation import observe
from monitoring.probes import LIMITED_FAILS_AFTER, record_check

pytestmark = pytest.mark.django_db
NOT_OURS = "rate limited (not ours): the edge said 429 while our budget had room"


def test_a_healthy_edge_gives_a_full_record(edge, planned):
    check = observe(planned.pk).check
    assert check.verdict == "ok" and check.reason == "healthy" and check.problems == []
    assert check.status_code == 200 and check.latency_ms > 0
    assert check.header["cohort"] in ("native", "proxy") and check.header["tag"] == "B2a"
    assert check.header_raw.startswith("1;tag=B2a;cohort=")
    assert check.reported_environment == "production" and check.reported_status == "healthy"
    assert check.canary["percent"] == 10 and check.canary["emergency_proxy"] is False
    assert check.health == {"database": "ok", "r2_bucket": "ok", "proxy_origin": "ok"}
    assert check.cookie_set and check.cookie_cohort == check.header["cohort"]


def test_a_component_in_error_fails_the_check(edge, planned):
    edge.knobs(health={"production": {"database": "timeout after 5s"}})
    check = observe(planned.pk).check
    assert check.verdict == "failed"
    assert check.reason == "database reports error: timeout after 5s"
    assert check.health["database"] == "error: timeout after 5s"
    assert "status is 'degraded'" in check.problems


def test_a_missing_config_is_reported_as_degraded(edge, production):
    check = observe(production.pk).check  # nothing in KV yet
    assert check.verdict == "failed" and check.reason == "status is 'degraded'"


def test_the_environments_probe_headers_get_past_the_rate_limit(edge, planned, settings):
    edge.knobs(rate_limit=1, rate_window=30, exempt_token="monitoring-secret-7f3a")
    assert observe(planned.pk).check.verdict == "ok"
    limited = observe(planned.pk).check
    assert limited.verdict == "limited" and limited.reason == NOT_OURS
    assert limited.status_code == 429

    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/production": {"X-Monitoring-Token": "monitoring-secret-7f3a"}
    }
    for _ in range(3):
        assert observe(planned.pk).check.verdict == "ok"
    # The secret went on the wire only: no row holds it.
    assert not HealthCheck.objects.filter(header_raw__contains="monitoring-secret").exists()


def test_another_environments_headers_are_not_sent(edge, planned, settings):
    edge.knobs(rate_limit=1, rate_window=30, exempt_token="token-for-preview")
    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/preview": {"X-Monitoring-Token": "token-for-preview"}
    }
    observe(planned.pk)
    assert observe(planned.pk).check.reason == NOT_OURS


# Each reason in English, as the row keeps it, and in German, as a German page says it: our
# sentence is said, what the edge sent (a header, a value, a component's state) stays as sent.
@pytest.mark.parametrize(
    "path, reason, german",
    [
        ("/no-header", "no X-Pix-Canary header", "kein X-Pix-Canary-Header"),
        ("/bad-header", "X-Pix-Canary header '1;tag=B2a;cohort=canary;reason=sampled' does not"
                        " parse (cohort 'canary' is not native or proxy)",
                        "X-Pix-Canary-Header '1;tag=B2a;cohort=canary;reason=sampled' lässt sich"
                        " nicht lesen (Kohorte 'canary' ist weder native noch proxy)"),
        ("/garbled-header", "X-Pix-Canary header 'native please' does not parse (no cohort)",
                            "X-Pix-Canary-Header 'native please' lässt sich nicht lesen (keine"
                            " Kohorte)"),
        ("/not-json", "body is not JSON", "die Antwort ist kein JSON"),
        ("/nan", "body is not JSON", "die Antwort ist kein JSON"),
        ("/not-an-object", "body is JSON but not an object",
                           "die Antwort ist JSON, aber kein Objekt"),
        ("/missing-fields", "body lacks 'health'", "der Antwort fehlt 'health'"),
        ("/missing-component", "body lacks 'health.r2_bucket'",
                               "der Antwort fehlt 'health.r2_bucket'"),
        ("/wrong-types", "'canary.percent' is '10', expected an integer 0–100",
                         "'canary.percent' ist '10', erwartet: eine ganze Zahl 0–100"),
        ("/wrong-emergency-type", "'canary.emergency_proxy' is 'no', expected true or false",
                                  "'canary.emergency_proxy' ist 'no', erwartet: true oder false"),
        ("/wrong-environment", "answered for environment 'preview', but 'production' was probed",
                               "hat für die Umgebung 'preview' geantwortet, geprüft wurde aber"
                               " 'production'"),
        ("/component-error", "database reports error: connection refused",
                             "database meldet error: connection refused"),
        ("/odd-component", "'health.proxy_origin' is 'meh', expected \"ok\" or \"error: …\"",
                           "'health.proxy_origin' ist 'meh', erwartet: \"ok\" oder \"error: …\""),
        ("/degraded", "status is 'degraded'", "Status ist 'degraded'"),
        ("/no-cookie", "no _canary_cohort cookie set, expected _canary_cohort=proxy to keep the"
                       " client in its cohort",
                       "kein _canary_cohort-Cookie gesetzt, erwartet _canary_cohort=proxy, damit"
                       " der Client in seiner Kohorte bleibt"),
        ("/cohort-mismatch", "the X-Pix-Canary header says cohort=native but the body says"
                             " cohort=proxy",
                             "der X-Pix-Canary-Header sagt cohort=native, die Antwort aber"
                             " cohort=proxy"),
        ("/server-error", "HTTP 503", "HTTP 503"),
        ("/slow", "timed out", "Zeitüberschreitung"),
        ("/loop", "too many redirects (a redirect loop?)",
                  "zu viele Weiterleitungen (eine Weiterleitungsschleife?)"),
        ("/huge", "body larger than 65536 bytes", "Antwort größer als 65536 Bytes"),
        ("/drip", "timed out (body still arriving after 2s)",
                  "Zeitüberschreitung (die Antwort lief nach 2 s noch ein)"),
    ],
)  # fmt: skip
def test_each_malformed_answer_is_a_failed_check_with_its_reason(
    misbehaving, production, path, reason, german
):
    production.qa_url = misbehaving.url(path)
    production.save()
    started = time.monotonic()
    check = observe(production.pk).check
    assert check.verdict == "failed"
    assert check.reason == reason, check.problems
    # Bounded: the test settings allow 1 s per read and 2 s for the whole exchange.
    assert time.monotonic() - started < 3.5
    check.refresh_from_db()
    assert check.reason_words == reason
    with translation.override("de"):
        assert check.reason_words == german


def test_a_429_is_a_rate_limited_check_not_a_failed_one(misbehaving, production):
    production.qa_url = misbehaving.url("/rate-limited")
    production.save()
    check = observe(production.pk).check
    assert check.verdict == "limited" and check.reason == NOT_OURS
    assert check.limited_by == "not_ours" and check.status_code == 429


def test_a_429_while_our_sample_runs_is_ours(misbehaving, production):
    production.qa_url = misbehaving.url("/rate-limited")
    production.save()
    CohortSample.objects.create(
        environment=production, trigger="manual", size=100, concurrency=4, state="running"
    )
    check = observe(production.pk).check
    assert check.verdict == "limited" and check.limited_by == "ours"
    assert check.reason == "rate limited (ours): the edge said 429 while our cohort sample ran"


def test_no_turn_left_in_our_budget_is_ours(edge, planned, settings):
    settings.EDGE_REQUEST_BUDGET = 1
    settings.EDGE_REQUEST_BUDGET_RESERVED = 0
    settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS = 30
    settings.EDGE_BUDGET_REDIS_URL = ""
    assert observe(planned.pk).check.verdict == "ok"
    report = read_qa(planned, max_wait=0)
    check = record_check(planned, report)
    assert check.verdict == "limited" and check.limited_by == "ours"
    assert check.reason == "rate limited (ours): our edge request budget had no turn left"


def test_a_429_that_persists_fails_the_check(misbehaving, production):
    production.qa_url = misbehaving.url("/rate-limited")
    production.save()
    verdicts = [observe(production.pk).check.verdict for _ in range(LIMITED_FAILS_AFTER + 1)]
    assert verdicts == ["limited"] * (LIMITED_FAILS_AFTER - 1) + ["failed", "failed"]
    failed = HealthCheck.objects.first()
    assert failed.reason == f"{NOT_OURS}, in {LIMITED_FAILS_AFTER} checks in a row"
    with translation.override("de"):
        assert failed.reason_words == (
            "von der Rate-Begrenzung gebremst (nicht unsere): die Edge antwortete 429, obwohl "
            f"unser Budget Platz hatte, in {LIMITED_FAILS_AFTER} Prüfungen hintereinander"
        )


def test_the_same_server_answering_well_passes(misbehaving, production):
    production.qa_url = misbehaving.url("/ok")
    production.save()
    check = observe(production.pk).check
    assert check.verdict == "ok", check.problems


def test_a_body_that_is_not_json_is_kept_in_part(misbehaving, production):
    production.qa_url = misbehaving.url("/not-json")
    production.save()
    check = observe(production.pk).check
    assert check.body_excerpt.startswith("<html><body>502 Bad Gateway")


def test_an_unreachable_edge_is_a_failed_check(production):
    production.qa_url = "http://127.0.0.1:9/api/qa"
    production.save()
    check = observe(production.pk).check
    assert check.verdict == "failed" and check.reason.startswith("unreachable:")


def test_the_task_records_once_per_interval_and_never_raises(misbehaving, production, settings):
    settings.OBSERVE_INTERVAL_SECONDS = 60
    production.qa_url = misbehaving.url("/not-json")
    production.save()
    tasks.observe_environment(production.pk)
    tasks.observe_environment(production.pk)  # a redelivered or doubled task
    assert HealthCheck.objects.filter(environment=production).count() == 1
    tasks.observe_environment(production.pk, force=True)  # a look right after a write
    assert HealthCheck.objects.filter(environment=production).count() == 2
    tasks.observe_environment(10**9)  # an environment deleted meanwhile


def test_one_check_per_interval_whatever_happens_to_the_message(
    edge, production, broker_url, settings
):
    """Each message beat's task sends records one check for its interval: taken again after its
    worker died, or restored after a restart, it records nothing more; taken late by a busy
    worker, it still observes."""
    import time_machine
    from django.utils import timezone

    from config.celery import app

    def sent_message():
        with app.connection_for_read() as connection:
            message = connection.default_channel.basic_get("celery", no_ack=True)
            args, kwargs, _ = message.decode()
            return app.tasks[message.headers["task"]], args, kwargs

    def beat_sends(at):
        with time_machine.travel(at, tick=False):
            tasks.observe_environments()
        return sent_message()

    def a_worker_takes(message, at):
        task, args, kwargs = message
        with time_machine.travel(at, tick=False):
            task(*args, **kwargs)

    settings.OBSERVE_INTERVAL_SECONDS = 60
    start = timezone.now()
    first = beat_sends(start)
    a_worker_takes(first, start + timedelta(seconds=1))
    a_worker_takes(first, start + timedelta(seconds=40))  # redelivered: its worker died
    second = beat_sends(start + timedelta(seconds=60))
    a_worker_takes(second, start + timedelta(seconds=110))  # a busy worker, late
    a_worker_takes(second, start + timedelta(minutes=5))  # restored after a restart
    checks = HealthCheck.objects.filter(environment=production).order_by("checked_at")
    assert list(checks.values_list("checked_at", flat=True)) == [
        start + timedelta(seconds=1),
        start + timedelta(seconds=110),
    ]


def test_the_beat_task_fans_out_to_connected_environments(edge, production):
    from tests.conftest import make_environment

    make_environment(edge, name="preview", connected=False)
    assert tasks.observe_environments() == [production.pk]
