import uuid

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy

from rollout.services.preview_words import words_text

from .drift_words import findings_words


class HealthCheck(models.Model):
    """What the observation's probe of an environment's ``/api/qa`` showed, and the verdict.

    Anything wrong with the answer is a failed check with its reason in words; an answer that
    works but carries something the contract does not know is a warning, with the same; raw rows
    are pruned after ``CHECK_RETENTION_DAYS`` into ``HourlySummary``.
    """

    class Verdict(models.TextChoices):
        OK = "ok", gettext_lazy("Ok")
        # It works, but carries something unexpected (``integrations.edge_qa.qa_warnings``).
        WARNING = "warning", gettext_lazy("Warning")
        FAILED = "failed", gettext_lazy("Failed")
        # The edge answered 429, or our request budget held the probe back: not a failure.
        RATE_LIMITED = "limited", gettext_lazy("rate limited")

    class LimitedBy(models.TextChoices):
        # Our own budget held the probe back, or our cohort sample was using the edge.
        OURS = "ours", gettext_lazy("ours")
        # The edge answered 429 while our budget had room: someone else's traffic.
        NOT_OURS = "not_ours", gettext_lazy("not ours")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        "rollout.Environment", on_delete=models.CASCADE, related_name="health_checks"
    )
    checked_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    # In English for the record (the log, the hourly summaries); ``words`` keeps each as its
    # message (``integrations.said``), which a page says in its reader's language.
    reason = models.CharField(max_length=300)
    problems = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    words = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    header_raw = models.CharField(max_length=300, blank=True)
    header = models.JSONField(default=dict, blank=True)
    reported_environment = models.CharField(max_length=100, blank=True)
    reported_status = models.CharField(max_length=100, blank=True)
    canary = models.JSONField(default=dict, blank=True)
    health = models.JSONField(default=dict, blank=True)
    cookie_set = models.BooleanField(default=False)
    cookie_cohort = models.CharField(max_length=32, blank=True)
    body_excerpt = models.CharField(max_length=300, blank=True)
    limited_by = models.CharField(max_length=8, choices=LimitedBy.choices, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(verdict__in=["ok", "warning", "failed", "limited"]),
                name="healthcheck_verdict_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="healthcheck_reason_not_empty"
            ),
        ]
        indexes = [
            # The checks history page and the panel's latest check: newest first per environment.
            models.Index(fields=["environment", "-checked_at"], name="healthcheck_env_time_idx"),
            # The history page filtered by verdict.
            models.Index(
                fields=["environment", "verdict", "-checked_at"], name="healthcheck_env_verdict_idx"
            ),
            # Retention: the oldest checks of every environment.
            models.Index(fields=["checked_at"], name="healthcheck_time_idx"),
        ]

    def __str__(self):
        return f"{self.environment_id} {self.checked_at:%Y-%m-%d %H:%M:%S} {self.verdict}"

    @property
    def ok(self) -> bool:
        return self.verdict == self.Verdict.OK

    @property
    def reason_words(self) -> str:
        """The reason in the active language; as kept for a check from before the words were."""
        return _said(self.words.get("reason"), self.reason)

    @property
    def problem_words(self) -> list[str]:
        return _said_each(self.words.get("problems"), self.problems)

    @property
    def warning_words(self) -> list[str]:
        return _said_each(self.words.get("warnings"), self.warnings)


def _said(words, kept: str) -> str:
    return words_text([words], kept) if words else kept


def _said_each(words, kept: list) -> list[str]:
    if not isinstance(words, list) or len(words) != len(kept):
        return kept
    return [_said(item, text) for item, text in zip(words, kept, strict=True)]


class CohortSample(models.Model):
    """N fresh-client probes of one environment, and the verdict on the native share.

    The row is the job: queued → running → done (with a verdict) or failed (it could not run).
    At most one is open per environment, so a double click or a slow worker never stacks runs.
    """

    class State(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        RUNNING = "running", gettext_lazy("Running")
        DONE = "done", gettext_lazy("Done")
        FAILED = "failed", gettext_lazy("Failed")

    class Verdict(models.TextChoices):
        PASS = "pass", gettext_lazy("Pass")
        FAIL = "fail", gettext_lazy("Fail")
        INCONCLUSIVE = "inconclusive", gettext_lazy("Inconclusive")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", gettext_lazy("scheduled")
        MANUAL = "manual", gettext_lazy("on demand")

    OPEN_STATES = (State.QUEUED, State.RUNNING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        "rollout.Environment", on_delete=models.CASCADE, related_name="cohort_samples"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    size = models.PositiveIntegerField()
    concurrency = models.PositiveSmallIntegerField()

    # The plan the share is judged against: the desired config when the sample started.
    desired_version = models.PositiveIntegerField(null=True, blank=True)
    expected_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    expected_tag = models.CharField(max_length=32, blank=True)
    emergency = models.BooleanField(default=False)

    native = models.PositiveIntegerField(default=0)
    proxy = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failure_reasons = models.JSONField(default=dict, blank=True)
    cohort_reasons = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Progress while it runs (written at most about once a second): probes with an answer or a
    # failure so far, when that was, and the time the budget's pace made it expect at the start.
    probed = models.PositiveIntegerField(default=0)
    progress_at = models.DateTimeField(null=True, blank=True)
    expected_seconds = models.FloatField(null=True, blank=True)
    # Seconds the probes waited for a turn of the edge request budget shared with the observation.
    budget_wait_seconds = models.FloatField(default=0)
    # The verdict pools every sample of the same desired version taken since it was in effect.
    pooled_samples = models.PositiveIntegerField(null=True, blank=True)
    pooled_native = models.PositiveIntegerField(null=True, blank=True)
    pooled_answered = models.PositiveIntegerField(null=True, blank=True)

    p_value = models.FloatField(null=True, blank=True)
    interval_low = models.FloatField(null=True, blank=True)
    interval_high = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    verdict_reason = models.CharField(max_length=300, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=models.Q(state__in=["queued", "running"]),
                name="cohortsample_one_open_per_environment",
            ),
            models.CheckConstraint(
                condition=models.Q(size__gte=F("native") + F("proxy") + F("failed")),
                name="cohortsample_counts_within_size",
            ),
            models.CheckConstraint(
                condition=models.Q(state="done") | models.Q(verdict=""),
                name="cohortsample_verdict_only_when_done",
            ),
            models.CheckConstraint(condition=models.Q(size__gte=1), name="cohortsample_size_1_up"),
        ]
        permissions = [("run_sample", "Can run a cohort sample on demand")]
        indexes = [
            # The cohort panel and its chart: an environment's latest samples.
            models.Index(fields=["environment", "-created_at"], name="cohortsample_env_time_idx"),
            # The sweep: queued and running samples whose worker may be gone.
            models.Index(fields=["state", "created_at"], name="cohortsample_state_idx"),
        ]

    def __str__(self):
        return f"{self.environment_id} {self.created_at:%Y-%m-%d %H:%M:%S} {self.state}"

    @property
    def answered(self) -> int:
        return self.native + self.proxy

    @property
    def native_share(self) -> float | None:
        return self.native / self.answered if self.answered else None

    @property
    def seconds_left(self) -> float | None:
        """About how long a running sample still needs: its pace so far, else the budget's."""
        if self.started_at is None or self.expected_seconds is None:
            return None
        if self.probed and self.progress_at:
            spent = (self.progress_at - self.started_at).total_seconds()
            left = spent / self.probed * (self.size - self.probed)
            return max(0.0, left - (timezone.now() - self.progress_at).total_seconds())
        return max(0.0, self.expected_seconds - (timezone.now() - self.started_at).total_seconds())

    @property
    def probes_sent(self) -> int:
        return self.answered + self.failed + self.rate_limited

    def start(self) -> bool:
        """Compare-and-set queued → running."""
        started = CohortSample.objects.filter(pk=self.pk, state=self.State.QUEUED).update(
            state=self.State.RUNNING, started_at=timezone.now()
        )
        if started:
            self.refresh_from_db()
        return bool(started)

    def finish(self, **fields) -> bool:
        """Compare-and-set running → done with the counts and the verdict."""
        done = CohortSample.objects.filter(pk=self.pk, state=self.State.RUNNING).update(
            state=self.State.DONE, finished_at=timezone.now(), **fields
        )
        if done:
            self.refresh_from_db()
        return bool(done)

    def give_up(self, error: str) -> bool:
        """Compare-and-set queued/running → failed: the sample could not be taken."""
        failed = CohortSample.objects.filter(pk=self.pk, state__in=self.OPEN_STATES).update(
            state=self.State.FAILED, finished_at=timezone.now(), error=error[:2000]
        )
        if failed:
            self.refresh_from_db()
        return bool(failed)


class HourlySummary(models.Model):
    """What the pruned raw checks and samples of one hour said, kept after they are gone.

    Counts and sums only, so a second prune of the same hour adds to it instead of replacing.
    """

    environment = models.ForeignKey(
        "rollout.Environment", on_delete=models.CASCADE, related_name="hourly_summaries"
    )
    hour = models.DateTimeField(help_text=gettext_lazy("start of the hour, UTC"))
    checks = models.PositiveIntegerField(default=0)
    checks_failed = models.PositiveIntegerField(default=0)
    # Checks that worked but carried something unexpected: not failures.
    checks_warned = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    latency_max_ms = models.FloatField(null=True, blank=True)
    failure_reasons = models.JSONField(default=dict, blank=True)
    warning_reasons = models.JSONField(default=dict, blank=True)
    samples = models.PositiveIntegerField(default=0)
    samples_failed = models.PositiveIntegerField(default=0)
    sample_native = models.PositiveIntegerField(default=0)
    sample_proxy = models.PositiveIntegerField(default=0)
    sample_rate_limited = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "hour"], name="hourlysummary_one_per_hour"
            ),
            models.CheckConstraint(
                condition=models.Q(checks_failed__lte=F("checks")),
                name="hourlysummary_failed_within_checks",
            ),
        ]
        # The unique constraint's index serves the per-environment listing.

    def __str__(self):
        return f"{self.environment_id} {self.hour:%Y-%m-%d %H:00}"

    @property
    def latency_avg_ms(self) -> float | None:
        return self.latency_sum_ms / self.latency_count if self.latency_count else None


class DriftState(models.Model):
    """Desired config, the value in Workers KV and what the edge reports, compared.

    One row per environment, rewritten by each drift check; every change of state also writes
    a ``DriftEvent``.
    """

    class KV(models.TextChoices):
        UNKNOWN = "unknown", gettext_lazy("not checked yet")
        IN_SYNC = "in_sync", gettext_lazy("matches desired")
        WRITING = "writing", gettext_lazy("write in progress")
        EXTERNAL = "external", gettext_lazy("changed outside the dashboard")
        WRITE_FAILED = "write_failed", gettext_lazy("last write failed")
        UNREADABLE = "unreadable", gettext_lazy("could not be read")
        NO_DESIRED = "no_desired", gettext_lazy("no desired config yet")

    class Edge(models.TextChoices):
        UNKNOWN = "unknown", gettext_lazy("not checked yet")
        IN_SYNC = "in_sync", gettext_lazy("reports the KV value")
        PROPAGATING = "propagating", gettext_lazy("propagating")
        LAGGING = "lagging", gettext_lazy("not reached the edge in time")
        UNREADABLE = "unreadable", gettext_lazy("could not be read")

    # States that need a person: adopt or overwrite.
    NEEDS_DECISION = (KV.EXTERNAL, KV.WRITE_FAILED)

    environment = models.OneToOneField(
        "rollout.Environment", on_delete=models.CASCADE, related_name="drift"
    )
    kv_state = models.CharField(max_length=16, choices=KV.choices, default=KV.UNKNOWN)
    edge_state = models.CharField(max_length=16, choices=Edge.choices, default=Edge.UNKNOWN)
    checked_at = models.DateTimeField(null=True, blank=True)
    desired_version = models.PositiveIntegerField(null=True, blank=True)
    desired = models.JSONField(null=True, blank=True)
    kv_raw = models.TextField(blank=True)
    kv_missing = models.BooleanField(default=False)
    kv_settings = models.JSONField(null=True, blank=True)
    # sha256 of the raw value ("missing" hashed when the key is absent): identifies "this value".
    kv_hash = models.CharField(max_length=64, blank=True)
    kv_seen_at = models.DateTimeField(null=True, blank=True)
    edge = models.JSONField(default=dict, blank=True)
    edge_behind_since = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)  # in English, for the record
    findings = models.JSONField(default=list, blank=True)  # the same as facts (drift_words.py)
    # The value already audited and announced (an external change, or a late write of ours that
    # was re-applied); cleared once KV is in sync again.
    external_hash = models.CharField(max_length=64, blank=True)
    external_since = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kv_state="external") | ~models.Q(kv_hash=""),
                name="driftstate_external_has_value",
            ),
        ]

    def __str__(self):
        return f"{self.environment_id}: KV {self.kv_state}, edge {self.edge_state}"

    @property
    def detail_words(self) -> str:
        """What the check found, in the active language."""
        return findings_words(self.findings, self.detail)

    @property
    def needs_decision(self) -> bool:
        return self.kv_state in self.NEEDS_DECISION and not self.resolution

    @property
    def attention(self) -> bool:
        return self.needs_decision or self.edge_state == self.Edge.LAGGING

    def settle(self, *, kv_hash: str, resolution: str) -> bool:
        """Compare-and-set: record that a person decided on exactly the value they saw."""
        settled = DriftState.objects.filter(
            pk=self.pk, kv_state__in=self.NEEDS_DECISION, kv_hash=kv_hash, resolution=""
        ).update(resolution=resolution[:300])
        if settled:
            self.refresh_from_db()
        return bool(settled)


class DriftEvent(models.Model):
    """A change of an environment's drift state (like healthchecks' Flip)."""

    environment = models.ForeignKey(
        "rollout.Environment", on_delete=models.CASCADE, related_name="drift_events"
    )
    at = models.DateTimeField(default=timezone.now)
    old_kv_state = models.CharField(max_length=16)
    new_kv_state = models.CharField(max_length=16)
    old_edge_state = models.CharField(max_length=16)
    new_edge_state = models.CharField(max_length=16)
    detail = models.TextField(blank=True)  # in English, for the record
    findings = models.JSONField(default=list, blank=True)  # the same as facts (drift_words.py)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The drift history on the monitoring page: newest first per environment.
            models.Index(fields=["environment", "-at"], name="driftevent_env_time_idx"),
        ]

    def __str__(self):
        return (
            f"{self.environment_id} {self.at:%Y-%m-%d %H:%M:%S} "
            f"KV {self.old_kv_state}→{self.new_kv_state}, "
            f"edge {self.old_edge_state}→{self.new_edge_state}"
        )

    @property
    def detail_words(self) -> str:
        """What the check found, in the active language."""
        return findings_words(self.findings, self.detail)

    @property
    def kv_change(self) -> str:
        """ "matches desired → changed outside the dashboard", in the active language."""
        return (
            f"{_named(DriftState.KV, self.old_kv_state)} → "
            f"{_named(DriftState.KV, self.new_kv_state)}"
        )

    @property
    def edge_change(self) -> str:
        return (
            f"{_named(DriftState.Edge, self.old_edge_state)} → "
            f"{_named(DriftState.Edge, self.new_edge_state)}"
        )


def _named(states, value: str) -> str:
    return states(value).label if value in states.values else value
