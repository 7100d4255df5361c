from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from . import notify
from .models import Notification


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_notification(self, notification_id: int):
    retry_in = notify.deliver(notification_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(acks_late=True)
def sweep_unsent_notifications():
    now = timezone.now()
    # A sender that died mid-send: its lease ran out, so queue the message again.
    Notification.objects.filter(state=Notification.State.SENDING, next_attempt_at__lt=now).update(
        state=Notification.State.QUEUED, next_attempt_at=None
    )
    due = Notification.objects.filter(state=Notification.State.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    for notification_id in due.values_list("pk", flat=True):
        send_notification.delay(notification_id)


# The name this task had while the outbox was part of monitoring. A message queued under it
# before an upgrade (a retry waits in the broker for up to a minute) is passed on under the new
# name instead of being rejected as unknown. Remove after one release.
@shared_task(name="monitoring.tasks.send_notification", acks_late=True)
def send_notification_by_its_old_name(notification_id: int):
    send_notification.delay(notification_id)
