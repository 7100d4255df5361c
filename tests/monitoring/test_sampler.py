"""The cohort sampler against the edge stand-in as a real HTTP server: the split at 0, 10, 50 and
100 % and in emergency, an edge off the plan, the worker's rate limit, probe headers, the time
limit, and a misbehaving edge."""

import pytest
from django.utils import timezone

from integrations.kv_value import CanarySettings
from integrations.stats import binomial_two_sided_p
from monitoring import sampler, tasks
from monitoring.models import CohortSample
from rollout.models import DesiredConfig
from tests.conftest import NAMESPACES, make_environment
from tests.monitoring.conftest import write_plan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def strict_alpha(settings):
    # The edge draws cohorts at random: at alpha 1e-4 a correct split fails the test about once
    # in 10 000 runs, while an edge off the plan (below) is still caught with p < 1e-15.
    settings.COHORT_SAMPLE_ALPHA = 1e-4


def take_sample(environment, **kwargs) -> CohortSample:
    sample, created = sampler.queue_sample(environment, trigger="manual", **kwargs)
    assert created
    return sampler.run_sample(sample.pk)


@pytest.mark.parametrize("percent", [0, 10, 50, 100])
def test_the_split_fits_the_plan(edge, production, percent):
    write_plan(production, CanarySettings(percent, "B2a", False))
    sample = take_sample(production)
    assert sample.state == "done" and sample.verdict == "pass", sample.verdict_reason
    assert sample.native + sample.proxy == 100
    assert sample.rate_limited == 0 and sample.failed == 0
    assert sample.expected_percent == percent and sample.desired_version == 1
    if percent == 0:
        assert sample.native == 0 and sample.interval_low == 0.0
    elif percent == 100:
        assert sample.proxy == 0 and sample.interval_high == 1.0
    else:
        assert 0 < sample.native < 100
        assert sample.interval_low < sample.native_share < sample.interval_high
    assert sample.confidence == pytest.approx(1 - sampler.look_alpha(1e-4, 1))
    assert set(sample.cohort_reasons) <= {"native/sampled", "proxy/sampled"}
    assert sample.tags == {"B2a": 100}
    assert "fits the plan" in sample.verdict_reason


def test_emergency_means_all_proxy(edge, production):
    write_plan(production, CanarySettings(50, "B2a", True))
    sample = take_sample(production)
    assert sample.verdict == "pass" and sample.emergency
    assert sample.proxy == 100 and sample.cohort_reasons == {"proxy/emergency": 100}
    assert sample.verdict_reason == "all 100 answers proxy, as the emergency stop requires"


def test_any_native_answer_during_an_emergency_fails(edge, production):
    write_plan(production, CanarySettings(50, "B2a", True))
    edge.knobs(ignore_emergency=True)  # a worker that does not honour the flag
    sample = take_sample(production)
    assert sample.verdict == "fail" and sample.native > 0
    assert "answers native while the emergency stop is on" in sample.verdict_reason


def test_an_edge_off_the_plan_fails(edge, production):
    write_plan(production)  # 10 %
    edge.put_external(NAMESPACES["production"], '{"canary_percent":50,"canary_tag":"B2a",'
                      '"emergency_proxy":false}')  # fmt: skip
    sample = take_sample(production)
    assert sample.verdict == "fail" and sample.p_value < 1e-10
    assert "is off the plan's 10%" in sample.verdict_reason
    assert sample.interval_low > 0.1


def test_an_edge_on_another_tag_fails(edge, production):
    write_plan(production)
    edge.put_external(NAMESPACES["production"], '{"canary_percent":10,"canary_tag":"B2b",'
                      '"emergency_proxy":false}')  # fmt: skip
    sample = take_sample(production)
    assert sample.verdict == "fail"
    assert sample.verdict_reason.startswith("edge answers with tag B2b, the plan says B2a")


def test_with_the_rate_limit_on_it_paces_itself_and_finishes(edge, production):
    write_plan(production)
    edge.knobs(rate_limit=10, rate_window=1)
    sample = take_sample(production, size=30)
    assert sample.verdict in ("pass", "fail") and sample.p_value is not None
    assert sample.verdict == "pass", sample.verdict_reason
    assert sample.native + sample.proxy == 30 and sample.failed == 0
    # 429s are counted apart and never as a cohort.
    assert sample.rate_limited > 0
    assert sum(sample.cohort_reasons.values()) == 30
    assert edge.state()["counters"]["edge"]["production"]["rate_limited"] == sample.rate_limited
    # 30 answers at 10 a second: the sampler waited out Retry-After rather than hammering.
    assert sample.duration_ms > 1500 and sample.rate_limited < 100


def test_the_monitoring_token_exempts_the_probes(edge, production, settings):
    write_plan(production)
    edge.knobs(rate_limit=10, rate_window=1, exempt_token="monitoring-secret-7f3a")
    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/production": {"X-Monitoring-Token": "monitoring-secret-7f3a"}
    }
    sample = take_sample(production)
    assert sample.rate_limited == 0 and sample.native + sample.proxy == 100


def test_the_time_limit_ends_a_sample_with_a_verdict_on_what_it_got(edge, production, settings):
    write_plan(production)
    settings.COHORT_SAMPLE_MAX_SECONDS = 1.0
    edge.knobs(rate_limit=5, rate_window=10)
    sample = take_sample(production, size=30)
    assert sample.state == "done" and sample.native + sample.proxy == 5
    assert sample.verdict == "pass"
    assert "only 5 of 30 answered within the time limit" in sample.verdict_reason
    assert sample.duration_ms < 3000


def test_failed_probes_are_counted_with_their_reasons(misbehaving, production):
    write_plan(production)
    production.qa_url = misbehaving.url("/no-header")
    production.save()
    sample = take_sample(production, size=20)
    assert sample.failed == 20 and sample.native + sample.proxy == 0
    assert sample.failure_reasons == {"no X-Pix-Canary header": 20}
    assert sample.verdict == "fail"
    assert sample.verdict_reason == "20 of 20 probes failed (mostly: no X-Pix-Canary header)"


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/garbled-header", "X-Pix-Canary header does not parse"),
        ("/server-error", "HTTP 503"),
        ("/loop", "too many redirects (a redirect loop?)"),
        ("/huge", "body larger than 65536 bytes"),
    ],
)
def test_a_misbehaving_edge_fails_the_sample(misbehaving, production, path, reason):
    write_plan(production)
    production.qa_url = misbehaving.url(path)
    production.save()
    sample = take_sample(production, size=10)
    assert sample.failure_reasons == {reason: 10} and sample.verdict == "fail"


def test_an_unreachable_edge_is_a_failed_sample_not_a_crash(production):
    write_plan(production)
    production.qa_url = "http://127.0.0.1:9/api/qa"
    production.save()
    sample = take_sample(production, size=5)
    assert sample.failure_reasons == {"unreachable (ConnectError)": 5}


def test_no_desired_config_means_nothing_to_judge(edge, production):
    sample = take_sample(production)
    assert sample.state == "failed" and "no desired config" in sample.error


def test_one_open_sample_per_environment(edge, production):
    write_plan(production)
    first, created = sampler.queue_sample(production, trigger="manual")
    again, created_again = sampler.queue_sample(production, trigger="schedule")
    assert created and not created_again and again.pk == first.pk
    sampler.run_sample(first.pk)
    assert sampler.run_sample(first.pk) is None  # a redelivered task does nothing
    _, created = sampler.queue_sample(production, trigger="manual")
    assert created


def test_the_plan_is_the_desired_config_when_the_sample_started(edge, production):
    write_plan(production)
    sample = take_sample(production)
    DesiredConfig.objects.filter(environment=production).update(canary_percent=50)
    sample.refresh_from_db()
    assert sample.expected_percent == 10


def test_the_schedule_samples_connected_environments_and_sweeps(edge, production, settings):
    write_plan(production)
    make_environment(edge, name="preview")  # connected, but no desired config: skipped
    queued = tasks.sample_cohorts()
    assert len(queued) == 1
    sample = CohortSample.objects.get(pk=queued[0])
    assert sample.trigger == "schedule" and sample.state == "queued"
    assert tasks.sample_cohorts() == []  # still open: not stacked
    # A worker died mid-sample long ago: the sweep gives it up, so the next one can start.
    CohortSample.objects.filter(pk=sample.pk).update(
        state="running", started_at=sample.created_at.replace(year=2000)
    )
    assert len(tasks.sample_cohorts()) == 1
    sample.refresh_from_db()
    assert sample.state == "failed" and "abandoned" in sample.error


def test_the_verdict_pools_the_samples_of_the_version_in_effect(edge, production):
    write_plan(production)  # 10 %, in effect
    first = take_sample(production, size=40)
    second = take_sample(production, size=40)
    assert first.pooled_samples == 1 and first.pooled_answered == 40
    assert second.pooled_samples == 2
    assert second.pooled_answered == 80
    assert second.pooled_native == first.native + second.native
    assert "over 2 samples of this version" in second.verdict_reason
    # The test and its interval are on the pooled counts, at the second look's alpha.
    assert second.p_value == pytest.approx(
        binomial_two_sided_p(second.pooled_native, 80, 0.10)
    )
    assert second.confidence == pytest.approx(1 - sampler.look_alpha(1e-4, 2))


def test_a_sample_before_the_version_took_effect_is_not_pooled(edge, production):
    write_plan(production)
    take_sample(production, size=20)
    change = production.changes.get(version=1)
    change.in_effect_at = timezone.now()
    change.save(update_fields=["in_effect_at"])
    later = take_sample(production, size=20)
    assert later.pooled_samples == 1 and later.pooled_answered == 20


def test_looks_never_spend_more_than_alpha():
    assert sum(sampler.look_alpha(0.01, k) for k in range(1, 100_000)) < 0.01
