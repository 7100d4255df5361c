"""Stickiness, measured: once a change that lowers the native share is in effect, one probe with
a native cookie shows what the edge really does (docs/contracts.md: a lower percent keeps the
cookie holders native; only the emergency flag overrides the cookie). End to end through a real
Celery worker and the edge stand-in, which implements the sticky cookie."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.kv_value import CanarySettings
from rollout.models import ConfigChange
from rollout.services import controls, stickiness
from rollout.tasks import sweep_unapplied_changes
from tests.conftest import client_for, wait_for
from tests.support.changes import change_config, in_effect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

B2B = CanarySettings(25, "B2b", False)
LOWER = CanarySettings(5, "B2b", False)


def probed(change, timeout=30):
    def recorded():
        change.refresh_from_db()
        return change.sticky_probe_result != ""

    wait_for(recorded, timeout=timeout, message=f"the stickiness probe of {change}")
    return change


@pytest.fixture
def at_25(edge, production, worker):
    initial = controls.create_initial_config(
        environment=production, settings=B2B, reason="phase B2b", system="test"
    )
    in_effect(initial)
    return production


def test_lowering_keeps_the_cookie_holders_native_as_warned(at_25, viewer):
    change = change_config(at_25, LOWER, reason="fewer native clients", expected_version=1)
    probed(in_effect(change))
    assert change.sticky_probe_result == "stayed"
    assert change.sticky_probe_detail == (
        "a client with a native cookie is still served native "
        "(X-Pix-Canary: cohort=native;reason=cookie)"
    )
    assert change.sticky_probe_at >= change.in_effect_at
    page = client_for(viewer).get(reverse("rollout:environment", args=[at_25.public_id]))
    assert "native cookie: cookie holders stay native" in page.content.decode()


def test_the_emergency_stop_moves_the_cookie_holders_to_proxy(at_25):
    change = controls.emergency_stop(environment=at_25, reason="errors", system="test")
    probed(in_effect(change))
    assert change.sticky_probe_result == "moved"
    assert change.sticky_probe_detail == (
        "a client with a native cookie is now served by the proxy "
        "(X-Pix-Canary: cohort=proxy;reason=emergency)"
    )


def test_a_probe_whose_worker_died_is_taken_again_by_the_sweep(edge, production, start_worker):
    """The row is the truth: a lowering change in effect with no probe recorded and no probe
    going on is queued again by the sweep, as a write or a confirmation is."""
    doomed = start_worker(
        pool="solo", name="doomed", env={"HTTP_TIMEOUT_SECONDS": 10, "KV_WRITE_LEASE_SECONDS": 40}
    )
    initial = controls.create_initial_config(
        environment=production, settings=B2B, reason="phase B2b", system="test"
    )
    in_effect(initial)
    edge.knobs(latency_ms=3000)  # every answer of the edge now takes 3 s
    change = change_config(production, LOWER, reason="fewer native clients", expected_version=1)
    in_effect(change, timeout=30)

    def probing():
        return [
            request
            for request in edge.edge_requests("production")
            if "_canary_cohort=native" in request["headers"].get("cookie", "")
        ]

    wait_for(probing, message="the probe with a native cookie to reach the edge")
    doomed.kill()  # mid-probe: the edge has not answered it
    edge.knobs(latency_ms=0)
    change.refresh_from_db()
    assert change.sticky_probe_at is None

    start_worker(name="rescuer")

    def probed_after_a_sweep():
        sweep_unapplied_changes.delay()
        change.refresh_from_db()
        return change.sticky_probe_result != ""

    wait_for(probed_after_a_sweep, timeout=30, interval=1, message="the sweep to probe again")
    assert change.sticky_probe_result == "stayed"
    assert len(probing()) == 2  # the dead worker's probe and the one after it, no more


def test_the_sweep_leaves_a_probe_alone_while_it_runs_or_once_it_no_longer_applies(
    edge, production
):
    def lowered(version, percent, **fields):
        return ConfigChange.objects.create(
            environment=production,
            version=version,
            kind=ConfigChange.Kind.PERCENT_CHANGE,
            requested_by_system="test",
            reason="lower",
            before={"canary_percent": percent + 5, "canary_tag": "B2b", "emergency_proxy": False},
            after={"canary_percent": percent, "canary_tag": "B2b", "emergency_proxy": False},
            state=ConfigChange.State.IN_EFFECT,
            **fields,
        )

    now = timezone.now()
    quiet = now - timedelta(minutes=1)
    lost = lowered(1, 20, in_effect_at=quiet, last_edge_probe_at=quiet)
    assert stickiness.due_for_sweep(now) == [lost.pk]
    # A probe at work keeps its change fresh; a newer change in effect is what the edge serves
    # now; after the cookie's day no client holds one from before the change.
    ConfigChange.objects.filter(pk=lost.pk).update(last_edge_probe_at=now)
    assert stickiness.due_for_sweep(now) == []
    ConfigChange.objects.filter(pk=lost.pk).update(last_edge_probe_at=quiet)
    newer = lowered(2, 15, in_effect_at=quiet, last_edge_probe_at=quiet)
    assert stickiness.due_for_sweep(now) == [newer.pk]
    long_ago = now - timedelta(hours=25)
    ConfigChange.objects.filter(pk=newer.pk).update(in_effect_at=long_ago)
    assert stickiness.due_for_sweep(now) == []


def test_a_raise_is_not_probed(edge, production, worker):
    initial = controls.create_initial_config(
        environment=production, settings=LOWER, reason="start", system="test"
    )
    in_effect(initial)
    raised = change_config(production, B2B, reason="more", expected_version=1)
    in_effect(raised)
    assert not raised.lowers_native_share
    # A lowering change afterwards is probed: the worker has run the queue past the raise.
    lowered = change_config(production, LOWER, reason="less", expected_version=2)
    probed(in_effect(lowered))
    raised.refresh_from_db()
    assert raised.sticky_probe_result == "" and raised.sticky_probe_at is None


def test_the_phase_evidence_shows_what_the_probe_saw(production_at_b2a, devops, viewer):
    from rollout.services.evidence import build
    from tests.test_decisions import NOW, observing

    run = observing(production_at_b2a, hours_ago=3)
    stop = controls.emergency_stop(environment=production_at_b2a, reason="5xx", actor=devops)
    detail = "a client with a native cookie is now served by the proxy (X-Pix-Canary: …)"
    # The stop two minutes ago: inside the window the page shows (it ends at the last minute).
    ConfigChange.objects.filter(pk=stop.pk).update(
        requested_at=timezone.now() - timedelta(minutes=2),
        sticky_probe_at=NOW,
        sticky_probe_result="moved",
        sticky_probe_detail=detail,
    )
    (item,) = build(run, timezone.now()).document["stickiness"]
    assert item["version"] == stop.version and item["change"] == "emergency stop"
    assert item["result"] == "cookie holders moved to proxy" and item["detail"] == detail
    page = client_for(viewer).get(f"/phases/{run.public_id}/").content.decode()
    assert "<strong>cookie holders moved to proxy</strong> — " + detail in page
