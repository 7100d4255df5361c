"""The Worker version serving each environment, as Cloudflare reports it, and a change of that
version inside a phase's observation window."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import MaxCharacters, at_most
from .environments import Environment
from .phases import PhaseRun


class WorkerDeployment(models.Model):
    """A deployment of the environment's Worker script, seen serving traffic by the scheduled
    read of Cloudflare, or reported by a pipeline right after ``wrangler deploy`` (until a read
    confirms it)."""

    class Via(models.TextChoices):
        READ = "read", gettext_lazy("read from Cloudflare")
        REPORTED = "reported", gettext_lazy("reported by a pipeline")

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="worker_deployments"
    )
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.READ)
    # Cloudflare's deployment id; empty for a reported deployment.
    deployment_id = models.CharField(max_length=64, blank=True)
    created_on = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=32, blank=True)
    strategy = models.CharField(max_length=32, blank=True)
    # [{"version_id": "...", "percentage": 100.0}, ...]: one version, or two under a split.
    versions = models.JSONField(default=list)
    message = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    triggered_by = models.CharField(max_length=64, blank=True)
    author_email = models.CharField(max_length=254, blank=True)
    seen_at = models.DateTimeField(default=timezone.now)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A reported deployment: when a read found its version serving traffic.
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seen_at", "-id"]
        constraints = [
            at_most("message", limits.NOTE),
            models.UniqueConstraint(
                fields=["environment", "deployment_id"],
                condition=~Q(deployment_id=""),
                name="worker_deployment_once",
            ),
            models.CheckConstraint(
                condition=Q(via="reported") | ~Q(deployment_id=""),
                name="worker_deployment_read_has_id",
            ),
        ]

    def __str__(self):
        return f"{self.environment} {self.describe()}"

    @property
    def version_ids(self) -> list[str]:
        return [version["version_id"] for version in self.versions]

    @property
    def is_split(self) -> bool:
        return len(self.versions) > 1

    @property
    def author(self) -> str:
        if self.reported_by is not None:
            return self.reported_by.get_username()
        return self.author_email or self.triggered_by or "unknown"

    def describe(self, *, full: bool = False) -> str:
        """The versions as people read them: "3f2a1b2c" or "3f2a1b2c 90% + 8c1d4e5f 10%"."""
        return describe_versions(self.versions, full=full)

    @property
    def describe_full(self) -> str:
        return self.describe(full=True)


def short(version_id: str) -> str:
    return version_id[:8]


def describe_versions(versions: list[dict], *, full: bool = False) -> str:
    """One version as its id; two (a gradual deployment) with their percentages. ``full``
    keeps whole ids (reports, the audit trail); pages show the first eight characters."""
    named = (lambda version_id: version_id) if full else short
    if not versions:
        return "unknown"
    if len(versions) == 1:
        return named(versions[0]["version_id"])
    return " + ".join(f"{named(v['version_id'])} {v['percentage']:g}%" for v in versions)


class BuildChange(models.Model):
    """A new deployment seen while a phase's window was open: its evidence no longer comes from
    one build. Until a person restarts the window from the new build's time or keeps it with a
    reason, the recommendation cannot be GO."""

    class Resolution(models.TextChoices):
        OPEN = "", gettext_lazy("waiting for a person")
        KEPT = "kept", gettext_lazy("window kept")
        RESTARTED = "restarted", gettext_lazy("window restarted")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="build_changes")
    before = models.ForeignKey(
        WorkerDeployment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    after = models.ForeignKey(WorkerDeployment, on_delete=models.PROTECT, related_name="+")
    # When the build changed: Cloudflare's created_on, not before the window began.
    changed_at = models.DateTimeField()
    detected_at = models.DateTimeField(default=timezone.now)
    resolution = models.CharField(
        max_length=16, choices=Resolution.choices, blank=True, default=Resolution.OPEN
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, validators=[MaxCharacters(limits.REASON)])
    restarted_as = models.ForeignKey(
        PhaseRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["changed_at", "id"]
        constraints = [
            at_most("reason", limits.REASON),
            models.UniqueConstraint(
                fields=["phase_run", "after"], name="build_change_once_per_deployment"
            ),
            models.CheckConstraint(
                condition=Q(resolution="") | Q(resolved_at__isnull=False),
                name="build_change_resolution_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.phase_run}: build changed at {self.changed_at:%Y-%m-%d %H:%M} UTC"

    @property
    def is_open(self) -> bool:
        return self.resolution == self.Resolution.OPEN

    @property
    def old_build(self) -> str:
        return self.before.describe() if self.before else "unknown"

    @property
    def new_build(self) -> str:
        return self.after.describe()
