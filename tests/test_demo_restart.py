"""Restarting the embedded demo is not an incident: the edge stand-in keeps KV across the
restart (no drift), and the seeded rollout is re-timed rather than left due at the old time."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone

from monitoring.models import DriftEvent
from monitoring.observation import observe
from rollout.models import AuditEntry, CheckIn, Environment, PhaseRun
from rollout.services import phases
from tests.conftest import NAMESPACES, make_environment
from tests.monitoring.conftest import write_plan
from tests.support.edge import EdgeStandIn

pytestmark = pytest.mark.django_db

B2A_10 = '{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":false}'


def standin(state_file):
    return EdgeStandIn(
        namespaces=NAMESPACES,
        token=django_settings.CLOUDFLARE_API_TOKEN,
        propagation_delay=0,
        rate_limit=0,
        state_file=state_file,
    )


def point_at(environment, server, settings):
    """The restarted stand-in listens on a new port (the demo's is fixed)."""
    settings.CLOUDFLARE_API_BASE_URL = server.api_base_url
    Environment.objects.filter(pk=environment.pk).update(qa_url=server.qa_url("production"))


def test_a_restarted_stand_in_is_no_drift(tmp_path, settings):
    state_file = tmp_path / "edge-state.json"
    with standin(state_file) as before:
        settings.CLOUDFLARE_API_BASE_URL = before.api_base_url
        environment = make_environment(before)
        write_plan(environment)
        drift = observe(environment.pk).drift
        assert (drift.kv_state, drift.edge_state) == ("in_sync", "in_sync")
    events_before = DriftEvent.objects.filter(environment=environment).count()

    with standin(state_file) as after:
        point_at(environment, after, settings)
        drift = observe(environment.pk).drift
        assert (drift.kv_state, drift.edge_state) == ("in_sync", "in_sync")
        assert not drift.attention
    assert DriftEvent.objects.filter(environment=environment).count() == events_before
    assert not AuditEntry.objects.filter(action="drift.external_change").exists()


def test_the_seeded_rollout_is_re_timed_after_a_restart(edge, production_at_b2a, tmp_path):
    edge.put_external(NAMESPACES["production"], B2A_10)
    call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60, directory=str(tmp_path))
    run = PhaseRun.objects.get(rollout__environment=production_at_b2a)
    window_ended_at = run.window_ends_at
    assert window_ended_at - timezone.now() < timedelta(minutes=11)

    # The demo was stopped for three hours, then started again; the window had come due while
    # it ran (advance_rollouts marked it), and runs again until its new end.
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        phases.advance_all()
        assert PhaseRun.objects.get(pk=run.pk).state == PhaseRun.State.DECISION_DUE
        call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60)
        now = timezone.now()
    run.refresh_from_db()
    assert (run.state, run.rollout.state) == ("observing", "observing")
    assert run.window_ends_at > now
    assert run.window_ends_at - now <= timedelta(minutes=10)
    assert run.window_ends_at - window_ended_at > timedelta(hours=2, minutes=50)
    decision = CheckIn.objects.get(phase_run=run, due_at=run.window_ends_at)
    assert decision.due_at > now and decision.missed_after > now
    assert AuditEntry.objects.filter(action="rollout.retimed").count() == 1
    assert PhaseRun.objects.filter(rollout__environment=production_at_b2a).count() == 1


def test_a_seeded_rollout_a_person_acted_on_is_left_alone(edge, production_at_b2a, tmp_path):
    edge.put_external(NAMESPACES["production"], B2A_10)
    call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60, directory=str(tmp_path))
    run = PhaseRun.objects.get(rollout__environment=production_at_b2a)
    CheckIn.objects.filter(phase_run=run).update(acknowledged_at=timezone.now())
    window_ends_at = run.window_ends_at
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60)
    run.refresh_from_db()
    assert run.window_ends_at == window_ends_at
    assert not AuditEntry.objects.filter(action="rollout.retimed").exists()


def statuses(run, now):
    return {check_in.label: check_in.status(now) for check_in in run.check_ins.all()}


def test_the_seeded_rollout_shows_no_check_in_missed_then_or_after_a_long_stop(
    edge, production_at_b2a, tmp_path
):
    """Its check-ins before T+12 h fell due before the demo existed: no one could have done them.
    After a stop of half a day they stay so (the rollout is re-timed with its check-ins)."""
    edge.put_external(NAMESPACES["production"], B2A_10)
    call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60, directory=str(tmp_path))
    run = PhaseRun.objects.get(rollout__environment=production_at_b2a)
    elapsed = {label: "elapsed" for label in ("T+0", "T+30 min", "T+2 h", "T+6 h")}
    expected = {**elapsed, "T+12 h": "due", "T+24 h": "upcoming"}
    assert statuses(run, timezone.now()) == expected

    with time_machine.travel(timezone.now() + timedelta(hours=13)):
        phases.advance_all()
        call_command("seed_demo_rollout", edge_url=edge.base_url, wait=60)
        assert statuses(run, timezone.now()) == expected
