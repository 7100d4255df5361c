import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations.kv_value import CanarySettings

from . import limits
from .limits import MaxCharacters, at_most

PERCENT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(100)]


class Service(models.Model):
    """A thing being rolled out, e.g. ``pix-immo-api``."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    # What the pre-flight asks the preview suite to have verified (issue 5).
    current_build = models.CharField(
        max_length=100,
        blank=True,
        help_text="The build on preview that is to go to production next, e.g. a deployment id "
        "or a commit. The production pre-flight needs a passed preview suite for this build.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Environment(models.Model):
    """One KV namespace and the edge that reads it (``preview`` or ``production``)."""

    PREVIEW = "preview"
    PRODUCTION = "production"
    NAME_CHOICES = [(PREVIEW, "preview"), (PRODUCTION, "production")]

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=16, choices=NAME_CHOICES)
    cloudflare_account_id = models.CharField(max_length=64)
    kv_namespace_id = models.CharField(max_length=64)
    qa_url = models.URLField("/api/qa URL", max_length=300)

    connected_at = models.DateTimeField(null=True, blank=True)
    connection_error = models.TextField(blank=True)

    # The KV write lease: one worker at a time writes this environment's key. Its holder renews
    # ``kv_lease_renewed_at`` while it works (rollout/kv_writer.py, LeaseHeartbeat).
    kv_lease_token = models.UUIDField(null=True, blank=True, editable=False)
    kv_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    kv_lease_renewed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The latest observation of KV and of the edge (written by the observe task).
    last_kv_raw = models.TextField(blank=True)
    last_kv_missing = models.BooleanField(default=False)
    last_kv_error = models.TextField(blank=True)
    last_kv_read_at = models.DateTimeField(null=True, blank=True)
    last_edge_report = models.JSONField(default=dict, blank=True)
    last_edge_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service__name", "-name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="environment_unique_name"),
        ]
        permissions = [
            ("connect_environment", "Can connect an environment and write its initial value"),
            ("request_change", "Can request percent changes and start phases"),
            ("approve_increase", "Can approve another person's percent increase"),
            ("emergency_stop", "Can trigger and lift the emergency stop"),
            ("rollback", "Can roll back to 0%"),
            ("sign_decision", "Can sign GO / HOLD / NO-GO decisions"),
            ("observe_phase", "Can acknowledge check-ins, attest criteria and edit post-mortems"),
        ]

    def __str__(self):
        return f"{self.service.name} / {self.name}"

    @property
    def is_production(self) -> bool:
        return self.name == self.PRODUCTION

    def try_acquire_kv_lease(self, *, seconds: float) -> uuid.UUID | None:
        """Compare-and-set: take the lease if it is free or expired. Returns its token."""
        now = timezone.now()
        token = uuid.uuid4()
        taken = Environment.objects.filter(
            Q(kv_lease_until__isnull=True) | Q(kv_lease_until__lt=now), pk=self.pk
        ).update(
            kv_lease_token=token,
            kv_lease_until=now + timedelta(seconds=seconds),
            kv_lease_renewed_at=now,
        )
        return token if taken else None

    def take_over_silent_kv_lease(
        self, *, seconds: float, silent_for: float
    ) -> tuple[uuid.UUID, datetime] | None:
        """Compare-and-set: take a lease whose holder has not renewed it for ``silent_for``
        seconds, although it has not expired. Returns the new token and the silent holder's
        last renewal. A holder that never renewed (``kv_lease_renewed_at`` empty) is left alone:
        nothing says it is dead."""
        now = timezone.now()
        lease = (
            Environment.objects.filter(pk=self.pk)
            .values("kv_lease_token", "kv_lease_renewed_at")
            .get()
        )
        renewed_at = lease["kv_lease_renewed_at"]
        if lease["kv_lease_token"] is None or renewed_at is None:
            return None
        if renewed_at > now - timedelta(seconds=silent_for):
            return None
        token = uuid.uuid4()
        taken = Environment.objects.filter(
            pk=self.pk, kv_lease_token=lease["kv_lease_token"], kv_lease_renewed_at=renewed_at
        ).update(
            kv_lease_token=token,
            kv_lease_until=now + timedelta(seconds=seconds),
            kv_lease_renewed_at=now,
        )
        return (token, renewed_at) if taken else None

    def renew_kv_lease(self, token: uuid.UUID) -> bool:
        """The holder's heartbeat: says it is alive. Does not extend the lease."""
        return bool(
            Environment.objects.filter(pk=self.pk, kv_lease_token=token).update(
                kv_lease_renewed_at=timezone.now()
            )
        )

    def holds_kv_lease(self, token: uuid.UUID, *, margin: float) -> bool:
        """Whether ``token`` still holds the lease with at least ``margin`` seconds left."""
        return Environment.objects.filter(
            pk=self.pk,
            kv_lease_token=token,
            kv_lease_until__gt=timezone.now() + timedelta(seconds=margin),
        ).exists()

    def release_kv_lease(self, token: uuid.UUID) -> None:
        Environment.objects.filter(pk=self.pk, kv_lease_token=token).update(
            kv_lease_token=None, kv_lease_until=None, kv_lease_renewed_at=None
        )


class RolloutPlan(models.Model):
    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="plan")
    name = models.CharField(max_length=100)
    decision_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text="Overrides of the GO / HOLD / NO-GO matrix, e.g. "
        '{"go_max_error_percent": 1.0}; keys not given keep the defaults of DESIGN.md '
        "(rollout.recommendation.Thresholds).",
    )

    def __str__(self):
        return f"{self.service.name}: {self.name}"

    def clean(self):
        from django.core.exceptions import ValidationError

        from .recommendation import Thresholds

        try:
            Thresholds.from_overrides(self.decision_thresholds)
        except ValueError as problem:
            raise ValidationError({"decision_thresholds": str(problem)}) from problem


class Phase(models.Model):
    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveSmallIntegerField()
    tag = models.CharField(max_length=32)
    percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    min_observation = models.DurationField(default=timedelta(hours=24))

    class Meta:
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="phase_unique_position"),
            models.UniqueConstraint(fields=["plan", "tag"], name="phase_unique_tag"),
            models.CheckConstraint(condition=Q(percent__lte=100), name="phase_percent_range"),
            models.CheckConstraint(condition=~Q(tag=""), name="phase_tag_not_empty"),
            models.CheckConstraint(
                condition=Q(min_observation__gte=timedelta(0)), name="phase_observation_positive"
            ),
        ]

    def __str__(self):
        return f"{self.tag} {self.percent}%"


class DesiredConfig(models.Model):
    """What KV should hold for one environment. ``version`` grows by one with every change."""

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="desired"
    )
    version = models.PositiveIntegerField(default=1)
    canary_percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    canary_tag = models.CharField(max_length=32)
    emergency_proxy = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(canary_percent__lte=100), name="desired_percent_range"
            ),
            models.CheckConstraint(condition=~Q(canary_tag=""), name="desired_tag_not_empty"),
            models.CheckConstraint(condition=Q(version__gte=1), name="desired_version_positive"),
        ]

    def __str__(self):
        return f"{self.environment} v{self.version}: {self.settings.describe()}"

    @property
    def settings(self) -> CanarySettings:
        return CanarySettings(self.canary_percent, self.canary_tag, self.emergency_proxy)


class ConfigChange(models.Model):
    """One recorded transition of an environment's desired config, and its way into KV.

    requested → applying → written → in_effect; or failed, or superseded by a newer version
    before it took effect.
    """

    class State(models.TextChoices):
        REQUESTED = "requested"
        APPLYING = "applying"
        WRITTEN = "written"
        IN_EFFECT = "in_effect", "in effect"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    class Kind(models.TextChoices):
        INITIAL = "initial", "initial value"
        PHASE_START = "phase_start", "phase start"
        PERCENT_CHANGE = "percent_change", "percent change"
        EMERGENCY_STOP = "emergency_stop", "emergency stop"
        LIFT_EMERGENCY = "lift_emergency", "emergency lifted"
        ROLLBACK = "rollback"
        REAPPLY = "reapply", "re-apply"
        ADOPT_EXTERNAL = "adopt_external", "adopted external change"

    PENDING_STATES = (State.REQUESTED, State.APPLYING)
    OPEN_STATES = (State.REQUESTED, State.APPLYING, State.WRITTEN)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="changes")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_by_system = models.CharField(max_length=64, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(validators=[MaxCharacters(limits.REASON)])
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField()

    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    requested_at = models.DateTimeField(default=timezone.now)
    applying_at = models.DateTimeField(null=True, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    in_effect_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    kv_value_before = models.TextField(blank=True)
    kv_value_written = models.TextField(blank=True)
    last_edge_probe_at = models.DateTimeField(null=True, blank=True)
    edge_overdue = models.BooleanField(default=False)
    # The last PUT of this change that got no answer (timed out, connection closed): the API may
    # still apply it later, after a newer version was written (monitoring/drift.py undoes that).
    unanswered_write_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            at_most("reason", limits.REASON),
            models.UniqueConstraint(
                fields=["environment", "version"], name="change_unique_version"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="change_reason_not_empty"),
            models.CheckConstraint(
                condition=Q(requested_by__isnull=False) | ~Q(requested_by_system=""),
                name="change_has_actor",
            ),
        ]
        indexes = [
            # The sweep and the overview: open changes per environment.
            models.Index(fields=["state", "environment"], name="change_state_env_idx"),
        ]

    def __str__(self):
        return f"{self.environment} v{self.version} {self.get_kind_display()} ({self.state})"

    @property
    def settings(self) -> CanarySettings:
        return CanarySettings(
            self.after["canary_percent"], self.after["canary_tag"], self.after["emergency_proxy"]
        )

    @property
    def actor_label(self) -> str:
        return self.requested_by.get_username() if self.requested_by else self.requested_by_system

    @property
    def time_to_effect(self) -> timedelta | None:
        if self.in_effect_at:
            return self.in_effect_at - self.requested_at
        return None

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    def _transition(self, from_states, **fields) -> bool:
        """Compare-and-set on ``state``: acts only if the row is still in one of ``from_states``."""
        changed = ConfigChange.objects.filter(pk=self.pk, state__in=from_states).update(**fields)
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def start_attempt(self) -> bool:
        return self._transition(
            self.PENDING_STATES,
            state=self.State.APPLYING,
            applying_at=timezone.now(),
            attempts=F("attempts") + 1,
            next_attempt_at=None,
        )

    def schedule_retry(self, error: str, delay_seconds: float, *, unanswered: bool = False) -> bool:
        """``unanswered``: this attempt's write got no answer and may still be applied."""
        now = timezone.now()
        fields = {"last_error": error, "next_attempt_at": now + timedelta(seconds=delay_seconds)}
        if unanswered:
            fields["unanswered_write_at"] = now
        return self._transition((self.State.APPLYING,), **fields)

    def mark_written(self, *, value_before: str, value_written: str) -> bool:
        return self._transition(
            (self.State.APPLYING,),
            state=self.State.WRITTEN,
            written_at=timezone.now(),
            kv_value_before=value_before,
            kv_value_written=value_written,
            last_error="",
        )

    def mark_in_effect(self) -> bool:
        return self._transition(
            (self.State.WRITTEN,),
            state=self.State.IN_EFFECT,
            in_effect_at=timezone.now(),
            last_edge_probe_at=timezone.now(),
            edge_overdue=False,
            last_error="",
        )

    def mark_failed(self, error: str, *, unanswered: bool = False) -> bool:
        now = timezone.now()
        fields = {"state": self.State.FAILED, "failed_at": now, "last_error": error}
        if unanswered:
            fields["unanswered_write_at"] = now
        return self._transition(self.PENDING_STATES, next_attempt_at=None, **fields)

    @classmethod
    def supersede_older(cls, environment: Environment, version: int) -> list[int]:
        """Mark every open change older than ``version`` as superseded; returns their ids."""
        older = cls.objects.filter(
            environment=environment, version__lt=version, state__in=cls.OPEN_STATES
        )
        ids = list(older.values_list("pk", flat=True))
        cls.objects.filter(pk__in=ids, state__in=cls.OPEN_STATES).update(
            state=cls.State.SUPERSEDED, superseded_at=timezone.now(), next_attempt_at=None
        )
        return ids


class PercentRequest(models.Model):
    """A request to raise the canary percent, waiting for a second person's approval.

    Lowering needs no approval and never creates one of these.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        STALE = "stale", "stale (config changed)"
        CANCELLED = "cancelled"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="percent_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(validators=[MaxCharacters(limits.REASON)])
    base_version = models.PositiveIntegerField()
    from_percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    to_percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    from_tag = models.CharField(max_length=32)
    to_tag = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    change = models.OneToOneField(
        ConfigChange, null=True, blank=True, on_delete=models.PROTECT, related_name="approval"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            at_most("reason", limits.REASON),
            at_most("decision_note", limits.NOTE),
            models.CheckConstraint(
                condition=Q(to_percent__gt=F("from_percent")), name="percent_request_raises"
            ),
            models.CheckConstraint(
                condition=Q(to_percent__lte=100), name="percent_request_percent_range"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="percent_request_has_reason"),
            # The four-eyes rule, in the database as well as in the service.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True)
                | ~Q(decided_by=F("requested_by"))
                | Q(state="cancelled"),
                name="percent_request_not_self_approved",
            ),
        ]
        indexes = [
            # The environment page: pending requests of one environment.
            models.Index(fields=["environment", "state"], name="percent_request_pending_idx"),
        ]

    def __str__(self):
        return f"{self.environment}: {self.from_percent}% → {self.to_percent}% ({self.state})"

    @property
    def summary(self) -> str:
        return (
            f"{self.environment.name}: {self.from_percent}% → {self.to_percent}%, tag {self.to_tag}"
        )

    def decide(self, *, state: str, by, note: str = "", change=None) -> bool:
        """Compare-and-set from pending; False when someone else decided first."""
        decided = PercentRequest.objects.filter(pk=self.pk, state=self.State.PENDING).update(
            state=state,
            decided_by=by,
            decided_at=timezone.now(),
            decision_note=note,
            change=change,
        )
        self.refresh_from_db()
        return bool(decided)


class AuditEntry(models.Model):
    """Append-only record of every action and automatic act, chained by hash.

    ``entry_hash`` is an HMAC-SHA256, under the key named by ``key_id``, of the entry's content
    and the previous entry's hash: changing or removing a stored entry breaks the chain from
    there on, and without the key (which never enters the database) nobody can re-seal it
    (``manage.py verify_audit``, rollout/audit.py). Entries written before the chain was keyed
    have an empty ``key_id`` and a plain SHA-256. The newest entry is checkpointed outside the
    database, which exposes deleted newest entries and a truncated table. On PostgreSQL
    triggers refuse UPDATE, DELETE (migration 0003) and TRUNCATE (migration 0012).
    """

    class Outcome(models.TextChoices):
        OK = "ok"
        REFUSED = "refused"
        FAILED = "failed"
        PENDING = "pending"

    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK)
    detail = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    # The id of the HMAC key that sealed the entry; empty for an unkeyed (legacy) entry.
    key_id = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The audit page's filters, newest first.
            models.Index(fields=["action", "-id"], name="audit_action_idx"),
            models.Index(fields=["environment", "-id"], name="audit_environment_idx"),
            models.Index(fields=["actor_label", "-id"], name="audit_actor_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    # The pages an entry's object has; the audit trail links to them.
    OBJECT_PAGES = {
        "Rollout": "rollout:rollout",
        "PhaseRun": "rollout:phase_run",
        "Decision": "rollout:decision",
        "PostMortem": "rollout:post_mortem",
        "VerificationRun": "rollout:preview_run",
    }

    @property
    def object_url(self) -> str:
        name = self.OBJECT_PAGES.get(self.object_type)
        if not name or not self.object_id:
            return ""
        try:
            return reverse(name, args=[self.object_id])
        except NoReverseMatch:
            return ""


# --- Preview verification and the production pre-flight (issue 5) ---------------------------


class VerificationRun(models.Model):
    """One run of the preview verification suite (the runbook's phase 2) against a preview edge.

    The row is the job: the task carries only its id, and the run's lease says which worker is
    executing it. The emergency check's restore is written down here *before* the emergency flag
    is set, so that a retried task or the sweep can finish it after a worker died halfway.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    class RestoreOutcome(models.TextChoices):
        NONE = "", "—"
        RESTORED = "restored", "restored"
        OVERTAKEN = "overtaken", "left alone: someone changed the config meanwhile"
        NOT_NEEDED = "not_needed", "nothing to restore: the emergency stop was never recorded"

    OPEN_STATES = (State.QUEUED, State.RUNNING)
    FINISHED_STATES = (State.PASSED, State.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="verification_runs"
    )
    build = models.CharField(max_length=100, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
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
    restore_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
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
        taken = VerificationRun.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=self.pk
        ).update(lease_token=token, lease_until=now + timedelta(seconds=seconds))
        return token if taken else None

    def renew_lease(self, token: uuid.UUID, *, seconds: float) -> bool:
        return bool(
            VerificationRun.objects.filter(pk=self.pk, lease_token=token).update(
                lease_until=timezone.now() + timedelta(seconds=seconds)
            )
        )

    def release_lease(self, token: uuid.UUID) -> None:
        VerificationRun.objects.filter(pk=self.pk, lease_token=token).update(
            lease_token=None, lease_until=None
        )

    def start(self, *, timeout_seconds: float) -> bool:
        """Compare-and-set queued → running."""
        now = timezone.now()
        started = VerificationRun.objects.filter(pk=self.pk, state=self.State.QUEUED).update(
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
        passed = not error and states == {VerificationCheck.State.PASSED}
        finished = VerificationRun.objects.filter(pk=self.pk, state=self.State.RUNNING).update(
            state=self.State.PASSED if passed else self.State.FAILED,
            finished_at=timezone.now(),
            error=error,
        )
        self.refresh_from_db()
        return bool(finished)


class VerificationCheck(models.Model):
    """One check of a preview suite run, with what the edge answered and why it failed."""

    class Name(models.TextChoices):
        QA_STRUCTURE = "qa_structure", "/qa endpoint structure"
        STICKY_NATIVE = "sticky_native", "Sticky cohort (native)"
        STICKY_PROXY = "sticky_proxy", "Sticky cohort (proxy)"
        HEADER_OVERRIDE = "header_override", "Header override"
        EMERGENCY_PROXY = "emergency_proxy", "Emergency proxy"
        RATE_LIMIT = "rate_limit", "Rate limiting"

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    FINISHED_STATES = (State.PASSED, State.FAILED)

    run = models.ForeignKey(VerificationRun, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=32, choices=Name.choices)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # What was sent and what came back: status line, headers, body excerpt (never secrets).
    evidence = models.JSONField(default=dict, blank=True)
    # What was seen when it passed (for the report's notes).
    note = models.TextField(blank=True)
    # Why it failed, in words.
    reason = models.TextField(blank=True)

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
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES


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
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Given when the phase was started outside the deploy window.
    window_override_reason = models.TextField(blank=True, validators=[MaxCharacters(limits.REASON)])
    preview_run = models.ForeignKey(
        VerificationRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start_change = models.ForeignKey(
        ConfigChange, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start_request = models.ForeignKey(
        PercentRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

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
        TEAM_NOTIFIED = "team_notified", "Team notified (Slack #deployments)"
        RUNBOOK_REVIEWED = "runbook_reviewed", "Rollback runbook reviewed"
        ONCALL_CONFIRMED = "oncall_confirmed", "On-call confirmed"
        ENGINEERS_AVAILABLE = "engineers_available", "Two or more engineers available for 4 h"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    preflight = models.ForeignKey(Preflight, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    given_at = models.DateTimeField(default=timezone.now)
    names = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    # The #deployments announcement this attestation queued (monitoring.Notification.public_id).
    notification_id = models.UUIDField(null=True, blank=True)

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


# --- rollouts, observation windows and decisions (issue 7) ----------------------------------------


class Rollout(models.Model):
    """One run of a service's plan through an environment's phases (runbook phases 5 and 6).

    draft → preview verified → observing (a phase's window runs) → decision due → after GO the
    next phase (observing again, or waiting for its pre-flight start) → completed at 100%; after
    HOLD the same phase observes a new window; after NO-GO aborted. Transitions go through
    ``rollout.lifecycle``, row-locked and audited.
    """

    class State(models.TextChoices):
        DRAFT = "draft"
        PREVIEW_VERIFIED = "preview_verified", "preview verified"
        OBSERVING = "observing", "phase running (observing)"
        DECISION_DUE = "decision_due", "decision due"
        AWAITING_NEXT = "awaiting_next", "GO signed, next phase waits for its start"
        COMPLETED = "completed"
        ABORTED = "aborted"

    FINISHED_STATES = (State.COMPLETED, State.ABORTED)
    TRANSITIONS = {
        State.DRAFT: {State.PREVIEW_VERIFIED, State.OBSERVING, State.ABORTED},
        State.PREVIEW_VERIFIED: {State.OBSERVING, State.ABORTED},
        State.OBSERVING: {State.DECISION_DUE, State.OBSERVING, State.ABORTED, State.COMPLETED},
        State.DECISION_DUE: {
            State.OBSERVING,
            State.AWAITING_NEXT,
            State.COMPLETED,
            State.ABORTED,
        },
        State.AWAITING_NEXT: {State.OBSERVING, State.ABORTED},
        State.COMPLETED: set(),
        State.ABORTED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(RolloutPlan, on_delete=models.PROTECT, related_name="rollouts")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="rollouts")
    build = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=~Q(state__in=["completed", "aborted"]),
                name="rollout_one_active_per_environment",
            ),
        ]

    def __str__(self):
        return f"{self.environment} rollout of {self.build or 'the current build'}"

    @property
    def is_active(self) -> bool:
        return self.state not in self.FINISHED_STATES


class PhaseRun(models.Model):
    """One observation window of one phase. The window counts from the moment the phase's config
    was in effect at the edge, not from the click; HOLD opens the next window of the same phase."""

    class State(models.TextChoices):
        WAITING = "waiting", "waiting for the config to take effect"
        OBSERVING = "observing"
        DECISION_DUE = "decision_due", "decision due"
        DECIDED = "decided"
        CANCELLED = "cancelled", "cancelled (the start did not go through)"

    OPEN_STATES = (State.WAITING, State.OBSERVING, State.DECISION_DUE)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="phase_runs")
    phase = models.ForeignKey(Phase, on_delete=models.PROTECT, related_name="runs")
    window_number = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start_change = models.ForeignKey(
        ConfigChange, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start_request = models.ForeignKey(
        PercentRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    in_effect_at = models.DateTimeField(null=True, blank=True)
    window_ends_at = models.DateTimeField(null=True, blank=True)
    incident_hit = models.BooleanField(default=False)

    class Meta:
        ordering = ["rollout", "started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rollout"],
                condition=Q(state__in=["waiting", "observing", "decision_due"]),
                name="phaserun_one_open_per_rollout",
            ),
            models.UniqueConstraint(
                fields=["rollout", "phase", "window_number"], name="phaserun_unique_window"
            ),
        ]

    def __str__(self):
        suffix = f", window {self.window_number}" if self.window_number > 1 else ""
        return f"{self.phase.tag} ({self.phase.percent}%{suffix})"

    @property
    def environment(self) -> Environment:
        return self.rollout.environment

    def window_open(self, now) -> bool:
        return self.window_ends_at is None or now < self.window_ends_at


class CheckIn(models.Model):
    """One of the runbook's check-ins on a phase's timeline (T+0, T+30 min, … T+24 h)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="check_ins")
    label = models.CharField(max_length=16)
    offset = models.DurationField()
    purpose = models.CharField(max_length=120)
    due_at = models.DateTimeField()
    # Acknowledged after this moment, the check-in counts as missed (acknowledged late).
    missed_after = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    # When #deployments was reminded that it is due (once; the decision's own is announced apart).
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["phase_run", "offset"]
        constraints = [
            at_most("note", limits.NOTE),
            models.UniqueConstraint(fields=["phase_run", "offset"], name="checkin_unique_offset"),
        ]

    def __str__(self):
        return f"{self.phase_run} {self.label}"

    def status(self, now) -> str:
        """upcoming, due, acknowledged, late (acknowledged after its slot) or missed."""
        if self.acknowledged_at:
            return "late" if self.acknowledged_at > self.missed_after else "acknowledged"
        if now < self.due_at:
            return "upcoming"
        return "due" if now <= self.missed_after else "missed"


class PhaseAttestation(models.Model):
    """A person's word on a criterion no metric covers; the newest of each kind counts."""

    class Kind(models.TextChoices):
        UPLOAD_FLOW = "upload_flow", "Upload flow healthy, no orphaned uploads"
        TEAM_AGREES = "team_agrees", "Team consensus: stable"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.BooleanField()
    note = models.TextField(validators=[MaxCharacters(limits.NOTE)])
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    given_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-given_at", "-id"]
        constraints = [
            at_most("note", limits.NOTE),
            models.CheckConstraint(condition=~Q(note=""), name="phase_attestation_has_note"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {'yes' if self.value else 'no'} by {self.given_by}"


class Decision(models.Model):
    """GO, HOLD or NO-GO for one phase window, with the frozen evidence its signers saw.

    It takes effect when a tech lead and a DevOps engineer, two different people, have both
    signed it on the same evidence (the digest). New evidence before the second signature
    invalidates the first.
    """

    class Outcome(models.TextChoices):
        GO = "go", "GO"
        HOLD = "hold", "HOLD"
        NO_GO = "no_go", "NO-GO"

    class State(models.TextChoices):
        OPEN = "open", "collecting signatures"
        EFFECTIVE = "effective", "in effect"
        WITHDRAWN = "withdrawn"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    recommendation = models.CharField(max_length=8, choices=Outcome.choices)
    evidence = models.JSONField()
    evidence_digest = models.CharField(max_length=64)
    justification = models.TextField(blank=True, validators=[MaxCharacters(limits.JUSTIFICATION)])
    early = models.BooleanField(default=False, help_text="signed before the window ended")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    effective_at = models.DateTimeField(null=True, blank=True)
    closed_note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    result_change = models.ForeignKey(
        ConfigChange, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    next_phase_run = models.ForeignKey(
        PhaseRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            at_most("justification", limits.JUSTIFICATION),
            at_most("closed_note", limits.NOTE),
            models.UniqueConstraint(
                fields=["phase_run"],
                condition=Q(state__in=["open", "effective"]),
                name="decision_one_per_window",
            ),
        ]

    def __str__(self):
        return f"{self.get_outcome_display()} for {self.phase_run}"

    @property
    def against_recommendation(self) -> bool:
        return self.outcome != self.recommendation


class Signature(models.Model):
    """One signer's name under a decision, on the evidence digest they saw."""

    class Role(models.TextChoices):
        TECH_LEAD = "tech_lead", "Tech lead"
        DEVOPS = "devops", "DevOps"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    evidence_digest = models.CharField(max_length=64)
    justification = models.TextField(blank=True, validators=[MaxCharacters(limits.JUSTIFICATION)])
    signed_at = models.DateTimeField(default=timezone.now)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            at_most("justification", limits.JUSTIFICATION),
            # Two different people in the two roles: one valid signature per person and per role.
            models.UniqueConstraint(
                fields=["decision", "signer"],
                condition=Q(invalidated_at__isnull=True),
                name="signature_one_per_person",
            ),
            models.UniqueConstraint(
                fields=["decision", "role"],
                condition=Q(invalidated_at__isnull=True),
                name="signature_one_per_role",
            ),
        ]

    def __str__(self):
        return f"{self.get_role_display()} {self.signer} on {self.decision}"


class PostMortem(models.Model):
    """Opened by a NO-GO: root cause, fix plan, re-rollout date and owner, with the timeline."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="post_mortem")
    timeline = models.TextField(validators=[MaxCharacters(limits.POST_MORTEM_SECTION)])
    root_cause = models.TextField(
        blank=True, validators=[MaxCharacters(limits.POST_MORTEM_SECTION)]
    )
    fix_plan = models.TextField(blank=True, validators=[MaxCharacters(limits.POST_MORTEM_SECTION)])
    rerollout_date = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            at_most("timeline", limits.POST_MORTEM_SECTION),
            at_most("root_cause", limits.POST_MORTEM_SECTION),
            at_most("fix_plan", limits.POST_MORTEM_SECTION),
        ]

    def __str__(self):
        return f"post-mortem of {self.decision.phase_run}"
