"""The production pre-flight before a phase starts, and its attestations."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import MaxCharacters, at_most
from .controls import PercentRequest
from .environments import ConfigChange, Environment, Phase
from .fields import person, reference
from .preview import PreviewRun


class Preflight(models.Model):
    """The checklist before one production phase start (runbook step 3.1).

    One open pre-flight per environment and phase; starting the phase closes it, so the next
    start of the same phase (after a rollback, a rejected approval) begins a fresh checklist.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="preflights"
    )
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="preflights")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = person(optional=True)
    # Given when the phase was started outside the deploy window.
    window_override_reason = models.TextField(blank=True, validators=[MaxCharacters(limits.REASON)])
    preview_run = reference(PreviewRun, optional=True)
    start_change = reference(ConfigChange, optional=True)
    start_request = reference(PercentRequest, optional=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            at_most("window_override_reason", limits.REASON),
            models.UniqueConstraint(
                fields=["environment", "phase"],
                condition=Q(started_at__isnull=True),
                name="preflight_one_open_per_phase",
            ),
        ]

    def __str__(self):
        return f"{self.environment} pre-flight for {self.phase}"


class PreflightAttestation(models.Model):
    """A person's word on one item of a pre-flight checklist; the newest of each kind counts."""

    class Kind(models.TextChoices):
        TEAM_NOTIFIED = "team_notified", gettext_lazy("Team notified (Slack #deployments)")
        RUNBOOK_REVIEWED = "runbook_reviewed", gettext_lazy("Rollback runbook reviewed")
        ONCALL_CONFIRMED = "oncall_confirmed", gettext_lazy("On-call confirmed")
        ENGINEERS_AVAILABLE = (
            "engineers_available",
            gettext_lazy("Two or more engineers available for 4 h"),
        )
        VERSION_SPLIT = "version_split", gettext_lazy("Cloudflare's version split acknowledged")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    preflight = models.ForeignKey(Preflight, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    given_by = person()
    given_at = models.DateTimeField(default=timezone.now)
    names = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    # The #deployments announcement this attestation queued (monitoring.Notification.public_id).
    notification_id = models.UUIDField(null=True, blank=True)
    # The acknowledged version split: the production deployment it was given for.
    deployment = models.ForeignKey(
        "WorkerDeployment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            at_most("note", limits.NOTE),
        ]
        ordering = ["-given_at", "-id"]
        indexes = [
            # The checklist: the newest attestation of each kind of one pre-flight.
            models.Index(fields=["preflight", "kind", "-given_at"], name="attestation_latest_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.given_by} at {self.given_at:%Y-%m-%d %H:%M}"
