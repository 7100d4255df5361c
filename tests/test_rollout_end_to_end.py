"""A rollout end to end on the edge stand-in, a real worker and the metrics pipeline, with the
clock moved forward through the 24-hour window instead of sleeping.

Phase B2a starts through its pre-flight and a second person's approval; the worker writes KV and
watches the edge until the change is in effect, which starts the window. A day of the edge's
traffic is written as Logpush files and ingested. The test process then travels to the first
deploy-window moment after the window's end, where the recommendation is read and two people
sign: GO puts B2b at 25% into KV and at the edge; in the second run the native cohort fails,
the recommendation is NO-GO and signing it rolls KV back to 0%.
"""

import json
from datetime import UTC, timedelta

import pytest
import time_machine
from django.utils import timezone

from integrations.kv_value import CanarySettings
from metrics import ingest
from metrics.models import LogSource
from rollout.models import (
    ConfigChange,
    Decision,
    DesiredConfig,
    PhaseRun,
    PostMortem,
    Rollout,
)
from rollout.services import controls, phases, preflight, signoff
from rollout.services.evidence import build
from tests.conftest import NAMESPACES, htmx_client_for, make_environment
from tests.preview.test_preflight import complete
from tests.support.changes import first_config, in_effect
from tests.support.rollouts import plan_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

HEALTHY = {
    "requests_per_minute": 60,
    "native": {"error_rate": 0.001, "latency_ms": 120},
    "proxy": {"error_rate": 0.001, "latency_ms": 120},
}
FAILING = {
    "requests_per_minute": 60,
    "native": {"error_rate": 0.05, "latency_ms": 120},
    "proxy": {"error_rate": 0.001, "latency_ms": 120},
}


@pytest.fixture
def environments(edge):
    preview = make_environment(edge, "preview")
    production = make_environment(edge)
    plan_for(production)
    return preview, production


@pytest.fixture
def logs(tmp_path, environments):
    return LogSource.objects.create(
        environment=environments[1],
        kind=LogSource.Kind.DIRECTORY,
        directory=str(tmp_path / "production"),
    )


def edge_config(edge):
    return json.loads(edge.kv_value(NAMESPACES["production"]))


@pytest.fixture
def b2a(environments, worker, release_manager, tech_lead) -> PhaseRun:
    """Production observing B2a: started through its pre-flight and a second person's approval,
    in effect at the edge."""
    preview, production = environments
    initial = first_config(production, CanarySettings(0, "B2a", False), reason="connected")
    in_effect(initial)
    now = timezone.now()
    complete(preview, production, release_manager, at=now)
    request = preflight.start_phase(
        environment=production,
        tag="B2a",
        reason="preview passed, team ready",
        expected_version=DesiredConfig.objects.get(environment=production).version,
        override_reason="the test runs at any hour",
        person=release_manager,
        now=now,
    )
    change = in_effect(
        controls.approve_percent_request(percent_request=request, approver=tech_lead)
    )
    rollout = phases.advance(phases.active_rollout(production))
    assert rollout.state == Rollout.State.OBSERVING
    run = PhaseRun.objects.get(rollout=rollout, phase__tag="B2a")
    # The window counts from the moment the edge reported the change, not from the click.
    assert run.in_effect_at == change.in_effect_at > request.requested_at
    assert run.window_ends_at == change.in_effect_at + timedelta(hours=24)
    return run


def a_day_of_traffic(edge, tmp_path, logs, run, knobs):
    edge.client.post("/_standin/traffic", json=knobs).raise_for_status()
    end = run.window_ends_at.timestamp()
    written = edge.client.post(
        "/_standin/logpush/write",
        json={
            "env": "production",
            "minutes": 24 * 60,
            "end": end,
            "file_minutes": 5,
            "directory": str(tmp_path),
        },
    )
    written.raise_for_status()
    report = ingest.ingest_source(logs.pk)
    assert report.counted
    return written.json()["requests"]


def decision_moment(run):
    """The first moment after the window's end when the deploy window is open (GO starts the
    next production phase through its pre-flight, which keeps to the deploy window)."""
    moment = run.window_ends_at + timedelta(minutes=1)
    window = preflight.deploy_window(moment.astimezone(UTC))
    return moment if window.open else window.next_opening + timedelta(minutes=5)


def sign_over_http(run, person, role, outcome):
    digest = build(run, timezone.now()).digest
    response = htmx_client_for(person).post(
        f"/phases/{run.public_id}/sign/",
        {"outcome": outcome, "role": role, "evidence_digest": digest},
    )
    assert response.status_code == 200, response.content.decode()[:800]


def test_b2a_window_passes_go_signed_b2b_in_effect_at_25(
    edge, environments, logs, tmp_path, b2a, release_manager, tech_lead, devops
):
    preview, production = environments
    run = b2a
    traffic = a_day_of_traffic(edge, tmp_path, logs, run, HEALTHY)
    assert traffic["native"]["requests"] > 5000

    with time_machine.travel(decision_moment(run), tick=True):
        rollout = phases.advance(run.rollout)
        assert rollout.state == Rollout.State.DECISION_DUE
        now = timezone.now()
        for kind in ("upload_flow", "team_agrees"):
            signoff.attest(
                run=run,
                kind=kind,
                value=True,
                note="checked the dashboards",
                person=tech_lead,
                now=now,
            )
        evidence = build(run, now)
        assert evidence.outcome == "go", evidence.recommendation.reasons
        # Whole minutes: the requests of the minute the window ends in fall outside it.
        counted = evidence.document["figures"]["cohorts"]["native"]["requests"]
        assert 0 <= traffic["native"]["requests"] - counted <= 20
        # B2b's pre-flight, given in the deploy window the decision is signed in.
        complete(preview, production, release_manager, at=now)

        sign_over_http(run, tech_lead, "tech_lead", "go")
        assert Decision.objects.get().state == Decision.State.OPEN
        sign_over_http(run, devops, "devops", "go")

    decision = Decision.objects.get()
    assert decision.state == Decision.State.EFFECTIVE and decision.outcome == "go"
    b2b = in_effect(decision.result_change)
    assert b2b.settings == CanarySettings(25, "B2b", False)
    assert b2b.approved_by == tech_lead and b2b.requested_by == devops
    assert edge_config(edge)["canary_percent"] == 25
    assert edge_config(edge)["canary_tag"] == "B2b"
    report = edge.client.get(edge.qa_url("production").removeprefix(edge.base_url)).json()
    assert report["canary"]["percent"] == 25 and report["canary"]["tag"] == "B2b"

    rollout = phases.advance(run.rollout)
    assert rollout.state == Rollout.State.OBSERVING
    following = PhaseRun.objects.get(rollout=rollout, phase__tag="B2b")
    assert following.in_effect_at == b2b.in_effect_at
    assert following.window_ends_at == b2b.in_effect_at + timedelta(hours=48)
    assert decision.next_phase_run == following


def test_high_native_error_rate_ends_in_no_go_and_kv_at_0(
    edge, logs, tmp_path, b2a, tech_lead, devops
):
    run = b2a
    a_day_of_traffic(edge, tmp_path, logs, run, FAILING)

    with time_machine.travel(decision_moment(run), tick=True):
        phases.advance(run.rollout)
        evidence = build(run, timezone.now())
        assert evidence.outcome == "no_go"
        assert evidence.recommendation.criterion("native_5xx").status == "fail"
        sign_over_http(run, tech_lead, "tech_lead", "no_go")
        sign_over_http(run, devops, "devops", "no_go")

    decision = Decision.objects.get()
    assert decision.state == Decision.State.EFFECTIVE and decision.outcome == "no_go"
    rollback = in_effect(decision.result_change)
    assert rollback.kind == ConfigChange.Kind.ROLLBACK
    assert edge_config(edge)["canary_percent"] == 0
    assert Rollout.objects.get().state == Rollout.State.ABORTED
    post_mortem = PostMortem.objects.get(decision=decision)
    assert "decision.signed" in post_mortem.timeline
