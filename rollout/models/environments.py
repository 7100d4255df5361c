"""Services, their environments, the rollout plan and its phases, and the desired config."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from integrations.kv_value import CanarySettings

from .. import limits
from ..limits import MaxCharacters, at_most
from .fields import person

PERCENT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(100)]


class Service(models.Model):
    """A thing being rolled out, e.g. ``pix-immo-api``."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    # What the pre-flight asks the preview suite to have verified.
    current_build = models.CharField(
        max_length=100,
        blank=True,
        help_text=gettext_lazy(
            "The build on preview that is to go to production next, e.g. a "
            "deployment id or a commit. The production pre-flight needs a passed "
            "preview suite for this build."
        ),
    )
    # The team shares one channel: its notifications and reports speak one language.
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        help_text=gettext_lazy(
            "The language of this service's Slack and PagerDuty messages and its reports."
        ),
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

    # The Worker script whose deployments say which version serves traffic, and the latest read
    # of them (written by the observe task; rollout/services/deployments.py).
    worker_script_name = models.CharField(
        max_length=64,
        blank=True,
        help_text=gettext_lazy(
            "The Worker script of this environment, e.g. pix-immo-api-preview; "
            "empty: the live version is not read."
        ),
    )
    live_deployment = models.ForeignKey(
        "WorkerDeployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deployments_read_at = models.DateTimeField(null=True, blank=True)
    deployments_error = models.TextField(blank=True)
    deployments_error_kind = models.CharField(max_length=16, blank=True)
    # After a 429: no read before this moment (the answer's Retry-After).
    deployments_retry_at = models.DateTimeField(null=True, blank=True)

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

    # What the latest read of the Worker's deployments ran into, as a state a page shows
    # (integrations/worker_deployments.py names the kinds).
    DEPLOYMENTS_STATES = {
        "auth": "API token refused",
        "missing_script": "Worker script not found",
        "rate_limited": "rate limited",
        "malformed": "unreadable answer",
        "unreachable": "Cloudflare API unreachable",
        "server": "Cloudflare API error",
        "refused": "read refused",
        "empty": "no deployment",
    }

    @property
    def deployments_state(self) -> str:
        kind = self.deployments_error_kind
        return self.DEPLOYMENTS_STATES.get(kind, kind) if kind else ""

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
        help_text=gettext_lazy(
            "Overrides of the GO / HOLD / NO-GO matrix, e.g. "
            '{"go_max_error_percent": 1.0}; keys not given keep the defaults of '
            "docs/contracts.md (rollout.services.recommendation.Thresholds)."
        ),
    )

    def __str__(self):
        return f"{self.service.name}: {self.name}"

    def clean(self):
        from django.core.exceptions import ValidationError

        from ..services.recommendation import Thresholds

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
        REQUESTED = "requested", gettext_lazy("Requested")
        APPLYING = "applying", gettext_lazy("Applying")
        WRITTEN = "written", gettext_lazy("Written")
        IN_EFFECT = "in_effect", gettext_lazy("in effect")
        FAILED = "failed", gettext_lazy("Failed")
        SUPERSEDED = "superseded", gettext_lazy("Superseded")

    class Kind(models.TextChoices):
        INITIAL = "initial", gettext_lazy("initial value")
        PHASE_START = "phase_start", gettext_lazy("phase start")
        PERCENT_CHANGE = "percent_change", gettext_lazy("percent change")
        EMERGENCY_STOP = "emergency_stop", gettext_lazy("emergency stop")
        LIFT_EMERGENCY = "lift_emergency", gettext_lazy("emergency lifted")
        ROLLBACK = "rollback", gettext_lazy("Rollback")
        REAPPLY = "reapply", gettext_lazy("re-apply")
        ADOPT_EXTERNAL = "adopt_external", gettext_lazy("adopted external change")

    class StickyProbe(models.TextChoices):
        STAYED = "stayed", gettext_lazy("cookie holders stay native")
        MOVED = "moved", gettext_lazy("cookie holders moved to proxy")
        UNKNOWN = "unknown", gettext_lazy("could not tell")

    PENDING_STATES = (State.REQUESTED, State.APPLYING)
    OPEN_STATES = (State.REQUESTED, State.APPLYING, State.WRITTEN)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="changes")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    requested_by = person(optional=True)
    requested_by_system = models.CharField(max_length=64, blank=True)
    approved_by = person(optional=True)
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
    # What the worker did with a client holding a native cookie once a lowering change was in
    # effect (rollout/services/stickiness.py): the page warns that such clients stay native.
    sticky_probe_at = models.DateTimeField(null=True, blank=True)
    sticky_probe_result = models.CharField(max_length=16, choices=StickyProbe.choices, blank=True)
    sticky_probe_detail = models.CharField(max_length=300, blank=True)

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

    @property
    def lowers_native_share(self) -> bool:
        """A rollback, an emergency stop or a lower percent: the changes next to which the
        dashboard warns that clients with a native cookie stay native (docs/contracts.md)."""
        if self.kind in (self.Kind.ROLLBACK, self.Kind.EMERGENCY_STOP):
            return True
        before, after = self.before or {}, self.after or {}
        if after.get("emergency_proxy") and not before.get("emergency_proxy"):
            return True
        lowered = before.get("canary_percent", 0) > after.get("canary_percent", 0)
        return lowered and not before.get("emergency_proxy")

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
