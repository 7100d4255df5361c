"""The outbox: one row per message to an outside channel."""

import uuid
from datetime import timedelta

from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy


class Notification(models.Model):
    """One message to an outside channel, and what became of it.

    The row is the job: the task only carries its id, so a retry, a second worker or the sweep
    can never send it twice once it is marked sent.
    """

    class Channel(models.TextChoices):
        SLACK_DEPLOYMENTS = "slack_deployments", gettext_lazy("Slack #deployments")
        SLACK_INCIDENTS = "slack_incidents", gettext_lazy("Slack #incidents")
        PAGERDUTY = "pagerduty", gettext_lazy("PagerDuty")

    class State(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        SENDING = "sending", gettext_lazy("Sending")
        SENT = "sent", gettext_lazy("Sent")
        FAILED = "failed", gettext_lazy("Failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.CharField(max_length=32, choices=Channel.choices)
    subject = models.CharField(max_length=200)
    payload = models.JSONField()
    related_object = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_answer = models.TextField(blank=True)
    # PagerDuty: the incident key and trigger / resolve. A resolve waits until every
    # earlier trigger of its key is sent or failed, or PagerDuty would be left with an open one.
    dedup_key = models.CharField(max_length=255, blank=True)
    event_action = models.CharField(max_length=16, blank=True)

    class Meta:
        # The table it had in the monitoring app: the rows stayed where they were.
        db_table = "monitoring_notification"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One message per channel per event: a re-run of the announcing code adds nothing.
            models.UniqueConstraint(
                fields=["channel", "related_object"],
                name="notification_once_per_event",
                condition=~models.Q(related_object=""),
            ),
        ]
        indexes = [
            # The sweep: unsent notifications.
            models.Index(fields=["state", "next_attempt_at"], name="notification_due_idx"),
        ]

    def __str__(self):
        return f"{self.get_channel_display()}: {self.subject} ({self.state})"

    def start_attempt(self, *, lease_seconds: float) -> bool:
        """Compare-and-set QUEUED → SENDING. While sending, ``next_attempt_at`` is the moment
        the sweep may assume the sender died and queue the message again."""
        now = timezone.now()
        started = (
            Notification.objects.filter(pk=self.pk, state=self.State.QUEUED)
            .exclude(next_attempt_at__gt=now)
            .update(
                state=self.State.SENDING,
                attempts=F("attempts") + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds),
            )
        )
        if started:
            self.refresh_from_db()
        return bool(started)

    def finish(self, *, sent: bool, status, answer: str, retry_in: float | None) -> None:
        fields = {"last_status": status, "last_answer": answer[:1000], "next_attempt_at": None}
        if sent:
            fields.update(state=self.State.SENT, sent_at=timezone.now())
        elif retry_in is not None:
            fields.update(
                state=self.State.QUEUED,
                next_attempt_at=timezone.now() + timedelta(seconds=retry_in),
            )
        else:
            fields.update(state=self.State.FAILED)
        Notification.objects.filter(pk=self.pk, state=self.State.SENDING).update(**fields)
        self.refresh_from_db()
