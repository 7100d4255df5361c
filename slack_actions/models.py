"""Who a Slack user is on the dashboard, and each button press from Slack."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from integrations import slack
from rollout import limits
from rollout.limits import at_most


class SlackUser(models.Model):
    """The dashboard user who acts when this Slack user presses a button.

    Set by an admin, or matched once by the email Slack confirmed for the user (``users.info``)
    and looked up again after ``SLACK_EMAIL_RECHECK_HOURS``. An admin's mapping wins and is
    never replaced by an email match."""

    class Source(models.TextChoices):
        ADMIN = "admin", gettext_lazy("set by an admin")
        EMAIL = "email", gettext_lazy("matched by verified email")

    slack_user_id = models.CharField(
        "Slack user id", max_length=32, unique=True, help_text=gettext_lazy("e.g. U024BE7LH")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_accounts"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    # The verified email Slack last reported for the user, and when (email matches only).
    email = models.EmailField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Slack user"
        ordering = ["slack_user_id"]

    def __str__(self):
        return f"{self.slack_user_id} → {self.user.get_username()}"

    def needs_recheck(self, now) -> bool:
        if self.source == self.Source.ADMIN:
            return False
        age = settings.SLACK_EMAIL_RECHECK_HOURS * 3600
        return self.checked_at is None or (now - self.checked_at).total_seconds() > age


class SlackAction(models.Model):
    """One press of a button in Slack, and what became of it. The row is the job: the task
    carries only its id, and the press's ``trigger_id`` is unique, so a replayed request adds
    nothing and acts on nothing."""

    class Action(models.TextChoices):
        APPROVE = slack.APPROVE, "approve"
        REJECT = slack.REJECT, "reject"
        ACKNOWLEDGE = slack.ACKNOWLEDGE, "acknowledge"
        EMERGENCY_STOP = slack.EMERGENCY_STOP, "emergency stop"

    class State(models.TextChoices):
        DIALOG = "dialog", gettext_lazy("dialog open")
        QUEUED = "queued"
        ACTING = "acting"
        DONE = "done"
        REFUSED = "refused"
        FAILED = "failed"

    FINISHED = (State.DONE, State.REFUSED, State.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    trigger_id = models.CharField(max_length=255, unique=True)
    action = models.CharField(max_length=64, choices=Action.choices)
    # The public id of what the button is about: a percent request, a check-in, an environment.
    object_id = models.CharField(max_length=64)
    slack_user_id = models.CharField(max_length=32)
    slack_team_id = models.CharField(max_length=32, blank=True)
    response_url = models.URLField(max_length=500, blank=True)
    # The message as it was pressed ({"text", "blocks"}), to show the outcome in its place.
    message = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker took the press (state "acting"): the sweep's lease runs from here.
    acting_since = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Telling Slack the outcome (the message replaced, or a note only the presser sees).
    replied_at = models.DateTimeField(null=True, blank=True)
    reply_attempts = models.PositiveSmallIntegerField(default=0)
    reply_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [at_most("reason", limits.REASON)]

    def __str__(self):
        return f"{self.get_action_display()} by {self.slack_user_id} ({self.state})"

    @property
    def via(self) -> str:
        """How the audit trail names the channel: the Slack user id."""
        return f"slack:{self.slack_user_id}"
