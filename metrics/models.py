import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy, gettext_noop

from rollout.models import ConfigChange, Environment, Service
from rollout.models.fields import person
from rollout.services.preview_words import decimal, said, words_text
from rollout.team_language import for_the_record

COHORT_CHOICES = [("native", "native"), ("proxy", "proxy"), ("unknown", "unknown")]


class LogSource(models.Model):
    """Where one environment's Logpush files land: an R2 bucket, or a directory for the demo.

    Both datasets live under their own prefix (``b2a/http_requests/``,
    ``b2a/workers_trace_events/``); for a directory the prefixes are paths inside it. R2
    credentials come from the settings, never from here.
    """

    class Kind(models.TextChoices):
        R2 = "r2", gettext_lazy("R2 bucket (S3 API)")
        DIRECTORY = "directory", gettext_lazy("local directory")

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="log_source"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.R2)
    bucket = models.CharField(max_length=63, blank=True, help_text=gettext_lazy("e.g. logs-canary"))
    directory = models.CharField(
        max_length=500, blank=True, help_text=gettext_lazy("absolute path")
    )
    http_requests_prefix = models.CharField(max_length=300, default="b2a/http_requests/")
    trace_events_prefix = models.CharField(
        max_length=300,
        default="b2a/workers_trace_events/",
        blank=True,
        help_text=gettext_lazy("empty: R2 upload errors are not counted"),
    )
    enabled = models.BooleanField(default=True)

    # What ingestion has seen (written by the ingest task only).
    newest_log_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_object_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The quick look for new objects lists only keys after the newest one counted, per dataset
    # (one cheap list call each when nothing is new); the whole listing, which also finds
    # objects whose names sort earlier and rewritten ones, runs every
    # METRICS_FULL_LISTING_SECONDS.
    listed_after = models.JSONField(default=dict, blank=True, editable=False)
    full_listing_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="r2") | ~Q(bucket=""), name="logsource_r2_has_bucket"
            ),
            models.CheckConstraint(
                condition=~Q(kind="directory") | ~Q(directory=""),
                name="logsource_directory_has_path",
            ),
        ]

    def __str__(self):
        where = self.bucket if self.kind == self.Kind.R2 else self.directory
        return f"{self.environment}: {self.get_kind_display()} {where}"

    def prefixes(self) -> list[tuple[str, str]]:
        found = [("http_requests", self.http_requests_prefix)]
        if self.trace_events_prefix:
            found.append(("workers_trace_events", self.trace_events_prefix))
        return found

    def logs_age(self, now=None) -> timedelta | None:
        if self.newest_log_at is None:
            return None
        return (now or timezone.now()) - self.newest_log_at


class LogObject(models.Model):
    """One object ingested, claimed in the transaction that folds it: each is counted once."""

    class State(models.TextChoices):
        COUNTED = "counted", gettext_lazy("counted")
        DAMAGED = "damaged", gettext_lazy("counted what could be read")
        UNREADABLE = "unreadable", gettext_lazy("nothing could be read")
        REPLACED = "replaced", gettext_lazy("rewritten after ingestion; not counted again")

    source = models.ForeignKey(LogSource, on_delete=models.CASCADE, related_name="log_objects")
    dataset = models.CharField(max_length=32)
    key = models.CharField(max_length=1024)
    etag = models.CharField(max_length=200)
    size = models.BigIntegerField(default=0)
    last_modified = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.COUNTED)
    lines = models.PositiveIntegerField(default=0)
    bad_lines = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    oldest_at = models.DateTimeField(null=True, blank=True)
    newest_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-ingested_at", "-id"]
        constraints = [
            # Exactly once: the claim. Its leading columns also serve the listing's question
            # "which of these keys are known already?".
            models.UniqueConstraint(fields=["source", "key", "etag"], name="logobject_once"),
        ]
        indexes = [
            # The panel's "recent problems with log files", newest first.
            models.Index(fields=["source", "-ingested_at"], name="logobject_recent_idx"),
        ]

    def __str__(self):
        return f"{self.key} ({self.state})"


class MinuteBucket(models.Model):
    """Requests of one cohort in one minute of one environment: counts and a TTFB histogram
    (``integrations.histogram``; merging buckets gives exact-to-1% percentiles of any window)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    cohort = models.CharField(max_length=8, choices=COHORT_CHOICES)
    requests = models.PositiveIntegerField(default=0)
    errors_5xx = models.PositiveIntegerField(default=0)
    # integrations.histogram.Histogram.to_bytes(): the run of non-empty bins, packed.
    ttfb_histogram = models.BinaryField(default=b"", blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["environment", "minute", "cohort"]
        constraints = [
            # One row per cell; its leading columns serve every window query
            # (environment = ? AND minute >= ? AND minute < ?).
            models.UniqueConstraint(
                fields=["environment", "minute", "cohort"], name="bucket_one_per_minute"
            ),
            models.CheckConstraint(
                condition=Q(errors_5xx__lte=models.F("requests")), name="bucket_errors_le_requests"
            ),
        ]

    def __str__(self):
        return f"{self.environment_id} {self.minute:%Y-%m-%d %H:%M} {self.cohort}"


class WorkerMinute(models.Model):
    """Worker invocations and failed R2 uploads in one minute (``workers_trace_events``)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    events = models.PositiveIntegerField(default=0)
    upload_errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["environment", "minute"]
        constraints = [
            # One row per minute; serves the window queries as bucket_one_per_minute does.
            models.UniqueConstraint(
                fields=["environment", "minute"], name="workerminute_one_per_minute"
            ),
        ]

    def __str__(self):
        return f"{self.environment_id} {self.minute:%Y-%m-%d %H:%M}: {self.upload_errors} errors"


class NativeSlice(models.Model):
    """Native requests and 5xx of one slice of seconds (``integrations.logpush.SLICE_SECONDS``)
    of one environment: the fine counts overwhelming evidence is judged on, so that a fault's
    first minute need not be diluted by the healthy seconds before it. Only the recent hour is
    kept (``metrics.ingest.SLICES_KEPT``)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors_5xx = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["environment", "start"]
        constraints = [
            # One row per slice; serves the evidence's window query and the pruning.
            models.UniqueConstraint(
                fields=["environment", "start"], name="nativeslice_one_per_env"
            ),
            models.CheckConstraint(
                condition=Q(errors_5xx__lte=models.F("requests")),
                name="nativeslice_errors_le_requests",
            ),
        ]

    def __str__(self):
        return f"{self.environment_id} {self.start:%H:%M:%S}: {self.errors_5xx}/{self.requests}"


# --- alerts --------------------------------------------------------------------------------------


class AlertPolicy(models.Model):
    """A service's alert settings (one per rollout): the traffic guard, the automatic
    emergency stop, and its rules."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="alert_policy")
    min_requests_per_minute = models.PositiveIntegerField(
        default=20,
        help_text=gettext_lazy("a cohort with fewer requests in a minute cannot fire a rule on it"),
    )
    auto_emergency_stop = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "a firing critical native-5xx rule triggers the emergency stop by itself"
        ),
    )
    # Overwhelming evidence: the critical native-5xx rule fires without waiting out its "for"
    # duration when the lower confidence bound of the native 5xx rate is far above its threshold.
    overwhelming_evidence = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "the critical native-5xx rule may fire at once on overwhelming evidence"
        ),
    )
    overwhelming_multiple = models.FloatField(
        default=3.0,
        help_text=gettext_lazy(
            "how many times the critical threshold the rate's lower bound must exceed"
        ),
    )
    overwhelming_min_requests = models.PositiveIntegerField(
        default=200, help_text=gettext_lazy("fewest native requests the evidence may rest on")
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = person(optional=True)

    class Meta:
        verbose_name_plural = "alert policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(overwhelming_multiple__gte=1), name="alertpolicy_multiple_at_least_1"
            ),
        ]

    def __str__(self):
        return f"alert policy of {self.service}"


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        NATIVE_5XX = "native_5xx_rate", gettext_lazy("native 5xx rate above (%)")
        NATIVE_P90 = "native_p90", gettext_lazy("native p90 TTFB above (ms)")
        P90_VS_PROXY = (
            "native_p90_vs_proxy",
            gettext_lazy("native p90 above proxy p90 by more than (%)"),
        )
        UPLOAD_ERRORS = "r2_upload_errors", gettext_lazy("R2 upload errors per minute above")
        COHORT_SHARE = "cohort_share", gettext_lazy("native share off plan by more than (points)")
        VOLUME_DROP = (
            "volume_drop",
            gettext_lazy("requests of the last hour down against the hour before (%)"),
        )
        LOGS_STALE = "logs_stale", gettext_lazy("no new logs for more than (minutes)")

    class Severity(models.TextChoices):
        WARNING = "warning", gettext_lazy("Warning")
        CRITICAL = "critical", gettext_lazy("Critical")

    policy = models.ForeignKey(AlertPolicy, on_delete=models.CASCADE, related_name="rules")
    name = models.SlugField(max_length=64)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    threshold = models.FloatField()
    for_minutes = models.PositiveSmallIntegerField(default=0)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["policy", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="alertrule_unique_name"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="alertrule_threshold_ge_0"),
            models.CheckConstraint(
                condition=Q(for_minutes__lte=1440), name="alertrule_for_at_most_a_day"
            ),
        ]

    def __str__(self):
        return self.name

    def describe(self) -> str:
        """The rule's condition in words, in the active language: "native 5xx rate above (%)
        1.5 for 5 min (warning)"."""
        return words_text([self.condition_said()])

    def condition_said(self) -> dict:
        """The rule's condition as a message and its facts (``preview_words.said``): a text kept
        for the record (an incident in a decision's evidence) says it again in its reader's
        language."""
        words = {
            "kind": said(for_the_record(str, self.get_kind_display())),
            "threshold": decimal(self.threshold),
            "severity": said(for_the_record(str, SEVERITY_WORDS.get(self.severity, self.severity))),
        }
        if self.for_minutes:
            return said(
                gettext_noop("%(kind)s %(threshold)s for %(minutes)s min (%(severity)s)"),
                minutes=self.for_minutes,
                **words,
            )
        return said(gettext_noop("%(kind)s %(threshold)s (%(severity)s)"), **words)

    @property
    def may_stop(self) -> bool:
        """Whether this rule triggers the emergency stop when its policy allows it."""
        return self.kind == self.Kind.NATIVE_5XX and self.severity == self.Severity.CRITICAL


# A rule's severity inside a sentence (its choices' labels start a cell).
SEVERITY_WORDS = {
    AlertRule.Severity.WARNING: gettext_lazy("warning"),
    AlertRule.Severity.CRITICAL: gettext_lazy("critical"),
}


class AlertState(models.Model):
    """Where one rule stands for one environment. Changed by compare-and-set only.

    ``last_minute`` is the newest minute of log data evaluated; ``since`` the first minute of the
    current run of minutes in which the condition held.

    "Not enough traffic" is a state of its own: a minute below the policy's traffic guard says
    nothing about the rule, so it neither holds nor resolves it. ``awaiting_recovery`` is set
    while a firing alert has not recovered (also while it cannot be judged): only a judged
    minute back under the threshold resolves it and announces the recovery.
    """

    class State(models.TextChoices):
        INACTIVE = "inactive", gettext_lazy("Inactive")
        PENDING = "pending", gettext_lazy("Pending")
        FIRING = "firing", gettext_lazy("Firing")
        NOT_ENOUGH_TRAFFIC = "unjudged", gettext_lazy("Not enough traffic to judge")
        RESOLVED = "resolved", gettext_lazy("Resolved")

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.INACTIVE)
    since = models.DateTimeField(null=True, blank=True)
    last_minute = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    awaiting_recovery = models.BooleanField(default=False)
    changed_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "environment"], name="alertstate_one_per_env"),
        ]

    def __str__(self):
        return f"{self.rule} @ {self.environment_id}: {self.state}"

    @property
    def dedup_key(self) -> str:
        """One PagerDuty incident key per alert (rule × environment)."""
        return f"rollout-control/{self.environment.public_id}/{self.rule.name}"


class AlertEvent(models.Model):
    """Every change of an alert's state (pending, firing, not enough traffic, resolved, back to
    inactive)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    alert = models.ForeignKey(AlertState, on_delete=models.CASCADE, related_name="events")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    old_state = models.CharField(max_length=16, choices=AlertState.State.choices)
    new_state = models.CharField(max_length=16, choices=AlertState.State.choices)
    minute = models.DateTimeField(help_text=gettext_lazy("the minute of log data that caused it"))
    figures = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    emergency_stop = models.ForeignKey(
        ConfigChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The panel's alert history of one environment, newest first.
            models.Index(fields=["environment", "-created_at"], name="alertevent_env_recent_idx"),
        ]

    def __str__(self):
        return f"{self.alert.rule.name}: {self.old_state} → {self.new_state}"
