"""Celery tasks. Each takes ids, re-reads the database and is safe to run twice."""

from celery import shared_task
from django.db import close_old_connections

from . import kv_writer
from .services import phases, preview, stickiness
from .services.audit_checkpoints import write_checkpoint


def _follow(task, outcome: kv_writer.Outcome):
    if outcome.confirm_change_id and outcome.retry_in is None:
        confirm_in_effect.delay(outcome.confirm_change_id)
    elif outcome.retry_in is not None:
        raise task.retry(countdown=outcome.retry_in)


@shared_task(bind=True, max_retries=None, acks_late=True)
def apply_desired_config(self, environment_id: int):
    """Write the environment's newest desired config to KV (see kv_writer)."""
    close_old_connections()
    _follow(self, kv_writer.reconcile(environment_id))


@shared_task(bind=True, max_retries=None, acks_late=True)
def confirm_in_effect(self, change_id: int):
    """Watch /api/qa until the edge reports a written change."""
    close_old_connections()
    outcome = kv_writer.confirm(change_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(bind=True, max_retries=20, acks_late=True)
def probe_stickiness(self, change_id: int):
    """Once a lowering change is in effect: what the edge does with a native cookie."""
    close_old_connections()
    retry_in = stickiness.probe(change_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(acks_late=True)
def sweep_unapplied_changes():
    """Re-queue what the database says is unfinished, whatever happened to its messages: writes,
    confirmations and stickiness probes."""
    environment_ids, change_ids = kv_writer.due_for_sweep()
    for environment_id in environment_ids:
        apply_desired_config.delay(environment_id)
    for change_id in change_ids:
        confirm_in_effect.delay(change_id)
    unprobed = stickiness.due_for_sweep()
    for change_id in unprobed:
        probe_stickiness.delay(change_id)
    return {"environments": environment_ids, "changes": change_ids, "stickiness": unprobed}


@shared_task(acks_late=True)
def checkpoint_audit():
    """Record the audit chain's head outside the database (see audit_checkpoints)."""
    close_old_connections()
    return write_checkpoint()


# --- Preview suite -----------------------------------------------------------------------------


@shared_task(acks_late=True)
def run_preview_suite(run_id: int):
    """Run a queued preview suite; a redelivered message for a run whose worker died takes it
    over (finishes the emergency check's restore, records the run as interrupted)."""
    close_old_connections()
    return preview.execute(run_id)


@shared_task(acks_late=True)
def sweep_preview_runs():
    """Take over runs whose worker died, finish pending restores, re-queue lost runs."""
    return preview.sweep()


# --- Rollouts: phase windows ------------------------------------------------------------------


@shared_task(acks_late=True)
def advance_rollouts():
    """Start windows whose config took effect, mark windows that ended as decision due.
    Idempotent (conditional updates): a retried or doubled run changes nothing more."""
    return phases.advance_all()
