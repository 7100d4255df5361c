"""Handing work to a Celery worker without failing the act that asked for it."""

import logging

log = logging.getLogger(__name__)


def try_to_queue(task, *args, what: str, **options) -> bool:
    """Queue ``task`` with ``args`` (and ``apply_async`` options); False when the broker cannot
    be reached. The outage is logged, not raised: all work queued here also happens another way
    (a sweep or the next scheduled run), so the act that asked for it must not fail."""
    try:
        task.apply_async(args, **options)
    except Exception as exc:  # any broker or connection error
        log.warning("could not queue %s: %s", what, exc)
        return False
    return True
