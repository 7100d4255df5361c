from celery import shared_task

from . import interactions


@shared_task(bind=True, max_retries=None, acks_late=True)
def carry_out(self, action_id: int):
    """One press from Slack: act, then tell Slack (each step done once, whatever the retries)."""
    retry_in = interactions.carry_out(action_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task
def sweep_presses():
    """Presses the broker lost or whose worker died, queued again (see ``interactions.sweep``)."""
    interactions.sweep()
