"""A worker killed inside the emergency check (SIGKILL, as a crashed machine): the restore is
finished by the sweep, or by a retry of the task, and preview ends in the state it had before."""

import json

import pytest
from django.utils import timezone

from rollout import tasks
from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PreviewRun
from rollout.services import preview as preview_suite
from tests.conftest import wait_for
from tests.preview.conftest import B2A, MONITORING_TOKEN, kv_settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

WORKER_ENV = {
    "EDGE_PROBE_HEADERS": json.dumps({"X-Monitoring-Token": MONITORING_TOKEN}),
    # A dead worker's run is free again this soon (the default is 6 HTTP timeouts).
    "PREVIEW_SUITE_LEASE_SECONDS": "3",
}


def kill_inside_the_emergency_check(edge, preview_adopted, start_worker, person):
    """Start a run on a one-task worker, let it turn the emergency flag on, kill the worker."""
    # The edge will not see the flag for a long time: the suite waits inside the check.
    edge.knobs(propagation_delay=30)
    worker = start_worker(pool="solo", concurrency=1, env=WORKER_ENV, name="doomed")
    run = preview_suite.create_run(environment=preview_adopted, build="deploy-1", started_by=person)
    wait_for(
        lambda: PreviewRun.objects.get(pk=run.pk).emergency_version is not None,
        timeout=30,
        message="the suite to record its emergency stop",
    )
    wait_for(lambda: kv_settings(edge).emergency_proxy, timeout=10, message="the flag in KV")
    worker.kill()
    edge.knobs(propagation_delay=0)
    run.refresh_from_db()
    assert run.state == "running" and run.restore_pending
    assert run.restore_settings == B2A.as_dict()
    assert DesiredConfig.objects.get(environment=preview_adopted).emergency_proxy
    return run


def assert_restored(edge, preview_adopted, run, version_before):
    run.refresh_from_db()
    assert run.state == "failed" and run.error.startswith("interrupted")
    assert not run.restore_pending and run.restore_outcome == "restored"
    emergency = run.checks.get(name="emergency_proxy")
    assert emergency.state == "failed"
    assert "interrupted" in emergency.reason and "restored 10%, tag B2a" in emergency.reason
    desired = DesiredConfig.objects.get(environment=preview_adopted)
    assert desired.settings == B2A and desired.version == version_before + 2
    restore = ConfigChange.objects.get(environment=preview_adopted, version=desired.version)
    assert (restore.kind, restore.requested_by_system) == ("lift_emergency", "preview-suite")
    wait_for(
        lambda: ConfigChange.objects.get(pk=restore.pk).state == "in_effect",
        timeout=15,
        message="the restore to reach the edge",
    )
    assert kv_settings(edge) == B2A
    assert AuditEntry.objects.filter(action="preview_suite.restored", object_id=str(run.public_id))
    assert AuditEntry.objects.filter(action="preview_suite.failed", object_id=str(run.public_id))


def test_the_sweep_restores_preview_after_the_worker_was_killed(
    edge_limits, preview_adopted, start_worker, release_manager
):
    version_before = DesiredConfig.objects.get(environment=preview_adopted).version
    run = kill_inside_the_emergency_check(
        edge_limits, preview_adopted, start_worker, release_manager
    )

    # While the dead worker's lease lasts, the sweep leaves the run alone.
    assert preview_suite.sweep()["taken_over"] == []
    wait_for(
        lambda: run.pk in preview_suite.sweep()["taken_over"],
        timeout=15,
        interval=0.3,
        message="the sweep to take the run over",
    )
    assert_restored(edge_limits, preview_adopted, run, version_before)


def test_a_retried_task_restores_preview_after_the_worker_was_killed(
    edge_limits, preview_adopted, start_worker, release_manager
):
    version_before = DesiredConfig.objects.get(environment=preview_adopted).version
    run = kill_inside_the_emergency_check(
        edge_limits, preview_adopted, start_worker, release_manager
    )
    start_worker(env=WORKER_ENV, name="heir")
    # The broker hands an unacknowledged message to another worker once its visibility timeout
    # has passed (longer than the lease); send it again as the broker would.
    wait_for(
        lambda: PreviewRun.objects.get(pk=run.pk).lease_until < timezone.now(),
        timeout=10,
        message="the dead worker's lease to run out",
    )
    tasks.run_preview_suite.delay(run.pk)
    wait_for(
        lambda: PreviewRun.objects.get(pk=run.pk).state == "failed",
        timeout=20,
        message="the second worker to take the run over",
    )
    assert_restored(edge_limits, preview_adopted, run, version_before)
