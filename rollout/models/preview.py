"""The preview suite: one recorded run of the runbook's integration checks and its checks."""

import uuid
from datetime import timedelta

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from ..services.preview_words import words_text
from .environments import Environment
from .fields import person


class PreviewRun(models.Model):
    """One run of the preview suite (the runbook's phase 2) against a preview edge.

    The row is the job: the task carries only its id, and the run's lease says which worker is
    executing it. The emergency check's restore is written down here *before* the emergency flag
    is set, so that a retried task or the sweep can finish it after a worker died halfway.
    """

    class State(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        RUNNING = "running", gettext_lazy("Running")
        PASSED = "passed", gettext_lazy("Passed")
        FAILED = "failed", gettext_lazy("Failed")

    class RestoreOutcome(models.TextChoices):
        NONE = "", "—"
        RESTORED = "restored", gettext_lazy("restored")
        OVERTAKEN = "overtaken", gettext_lazy("left alone: someone changed the config meanwhile")
        NOT_NEEDED = (
            "not_needed",
            gettext_lazy("nothing to restore: the emergency stop was never recorded"),
        )

    OPEN_STATES = (State.QUEUED, State.RUNNING)
    FINISHED_STATES = (State.PASSED, State.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="preview_runs"
    )
    build = models.CharField(max_length=100, blank=True)
    # The deployment live on preview when the run was started: the versions it verifies. Empty
    # when the build was typed instead (the live version could not be read), with the reason.
    deployment = models.ForeignKey(
        "WorkerDeployment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    build_typed_reason = models.TextField(blank=True)
    started_by = person(optional=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The desired config (settings and version) the run verified against.
    expected = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    # Which worker executes the run; a dead worker's lease runs out and the sweep takes over.
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    # The emergency check's restore bookkeeping.
    restore_pending = models.BooleanField(default=False)
    restore_settings = models.JSONField(null=True, blank=True)
    restore_from_version = models.PositiveIntegerField(null=True, blank=True)
    emergency_version = models.PositiveIntegerField(null=True, blank=True)
    restore_version = models.PositiveIntegerField(null=True, blank=True)
    restore_outcome = models.CharField(
        max_length=16, choices=RestoreOutcome.choices, blank=True, default=RestoreOutcome.NONE
    )
    restore_note = models.TextField(blank=True)  # in English, for the record
    restore_words = models.JSONField(default=list, blank=True)  # the same said (preview_words.py)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Constraint and index names keep the model's former name ("verification"): renaming
        # one would rebuild it for no gain.
        constraints = [
            # Two suites at once would flip each other's emergency flag.
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(state__in=["queued", "running"]),
                name="verification_one_open_run",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "passed", "failed"]),
                name="verification_state_known",
            ),
        ]
        indexes = [
            # The pre-flight: the latest finished run of a preview environment for one build.
            models.Index(
                fields=["environment", "build", "-finished_at"], name="verification_latest_idx"
            ),
            # The sweep: running runs and restores still pending.
            models.Index(fields=["state", "lease_until"], name="verification_sweep_idx"),
        ]

    def __str__(self):
        return f"{self.environment} suite {self.created_at:%Y-%m-%d %H:%M} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES

    @property
    def restore_said(self) -> str:
        """What became of preview after the emergency check, in the active language."""
        return words_text(self.restore_words, self.restore_note)

    @property
    def version_ids(self) -> list[str]:
        """The Worker versions this run verified: the live deployment's, else the typed build."""
        if self.deployment_id is not None:
            return self.deployment.version_ids
        return [self.build] if self.build else []

    @property
    def passed(self) -> bool:
        return self.state == self.State.PASSED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def try_acquire_lease(self, *, seconds: float) -> uuid.UUID | None:
        """Compare-and-set: take the run if nobody holds it or the holder's lease ran out."""
        now = timezone.now()
        token = uuid.uuid4()
        taken = PreviewRun.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=self.pk
        ).update(lease_token=token, lease_until=now + timedelta(seconds=seconds))
        return token if taken else None

    def renew_lease(self, token: uuid.UUID, *, seconds: float) -> bool:
        return bool(
            PreviewRun.objects.filter(pk=self.pk, lease_token=token).update(
                lease_until=timezone.now() + timedelta(seconds=seconds)
            )
        )

    def release_lease(self, token: uuid.UUID) -> None:
        PreviewRun.objects.filter(pk=self.pk, lease_token=token).update(
            lease_token=None, lease_until=None
        )

    def start(self, *, timeout_seconds: float) -> bool:
        """Compare-and-set queued → running."""
        now = timezone.now()
        started = PreviewRun.objects.filter(pk=self.pk, state=self.State.QUEUED).update(
            state=self.State.RUNNING,
            started_at=now,
            deadline_at=now + timedelta(seconds=timeout_seconds),
            attempts=F("attempts") + 1,
        )
        if started:
            self.refresh_from_db()
        return bool(started)

    def finish(self, *, error: str = "") -> bool:
        """Running → passed when every check passed, else failed. Compare-and-set."""
        states = set(self.checks.values_list("state", flat=True))
        passed = not error and states == {PreviewCheck.State.PASSED}
        finished = PreviewRun.objects.filter(pk=self.pk, state=self.State.RUNNING).update(
            state=self.State.PASSED if passed else self.State.FAILED,
            finished_at=timezone.now(),
            error=error,
        )
        self.refresh_from_db()
        return bool(finished)


class PreviewCheck(models.Model):
    """One check of a preview suite run, with what the edge answered and why it failed."""

    class Name(models.TextChoices):
        QA_STRUCTURE = "qa_structure", gettext_lazy("/qa endpoint structure")
        STICKY_NATIVE = "sticky_native", gettext_lazy("Sticky cohort (native)")
        STICKY_PROXY = "sticky_proxy", gettext_lazy("Sticky cohort (proxy)")
        HEADER_OVERRIDE = "header_override", gettext_lazy("Header override")
        EMERGENCY_PROXY = "emergency_proxy", gettext_lazy("Emergency proxy")
        RATE_LIMIT = "rate_limit", gettext_lazy("Rate limiting")

    class State(models.TextChoices):
        PENDING = "pending", gettext_lazy("Pending")
        RUNNING = "running", gettext_lazy("Running")
        PASSED = "passed", gettext_lazy("Passed")
        FAILED = "failed", gettext_lazy("Failed")

    FINISHED_STATES = (State.PASSED, State.FAILED)

    run = models.ForeignKey(PreviewRun, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=32, choices=Name.choices)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # What was sent and what came back: status line, headers, body excerpt (never secrets).
    evidence = models.JSONField(default=dict, blank=True)
    # What was seen when it passed (for the report's notes), in English for the record.
    note = models.TextField(blank=True)
    # Why it failed, in words, in English for the record.
    reason = models.TextField(blank=True)
    # The note or the reason said in a reader's language: text and messages (preview_words.py).
    words = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="verification_check_once"),
            models.UniqueConstraint(fields=["run", "position"], name="verification_check_position"),
            models.CheckConstraint(
                condition=~Q(state="failed") | ~Q(reason=""), name="verification_failure_reason"
            ),
        ]

    def __str__(self):
        return f"{self.get_name_display()}: {self.state}"

    @property
    def said(self) -> str:
        """What it saw, or why it failed, in the active language."""
        return words_text(self.words, self.reason if self.state == "failed" else self.note)

    @property
    def warnings(self) -> list:
        """What a passed check saw that works but is unexpected (recorded in its evidence)."""
        warnings = self.evidence.get("warnings") if isinstance(self.evidence, dict) else None
        return warnings if isinstance(warnings, list) else []
