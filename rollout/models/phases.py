"""A rollout through the plan's phases: each phase's run, its observation window, check-ins
and attestations."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from .. import limits
from ..limits import MaxCharacters, at_most
from .controls import PercentRequest
from .environments import ConfigChange, Environment, Phase, RolloutPlan
from .fields import person, reference


class Rollout(models.Model):
    """One run of a service's plan through an environment's phases (runbook phases 5 and 6).

    draft → preview verified → observing (a phase's window runs) → decision due → after GO the
    next phase (observing again, or waiting for its pre-flight start) → completed at 100%; after
    HOLD the same phase observes a new window; after NO-GO aborted. Transitions go through
    ``rollout.services.phases``, row-locked and audited.
    """

    class State(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Draft")
        PREVIEW_VERIFIED = "preview_verified", gettext_lazy("preview verified")
        OBSERVING = "observing", gettext_lazy("phase running (observing)")
        DECISION_DUE = "decision_due", gettext_lazy("decision due")
        AWAITING_NEXT = "awaiting_next", gettext_lazy("GO signed, next phase waits for its start")
        COMPLETED = "completed", gettext_lazy("Completed")
        ABORTED = "aborted", gettext_lazy("Aborted")

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
    created_by = person(optional=True)
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
        WAITING = "waiting", gettext_lazy("waiting for the config to take effect")
        OBSERVING = "observing", gettext_lazy("Observing")
        DECISION_DUE = "decision_due", gettext_lazy("decision due")
        DECIDED = "decided", gettext_lazy("Decided")
        CANCELLED = "cancelled", gettext_lazy("cancelled (the start did not go through)")
        RESTARTED = "restarted", gettext_lazy("restarted from a new build")

    OPEN_STATES = (State.WAITING, State.OBSERVING, State.DECISION_DUE)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="phase_runs")
    phase = models.ForeignKey(Phase, on_delete=models.PROTECT, related_name="runs")
    window_number = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = person(optional=True)
    start_change = reference(ConfigChange, optional=True)
    start_request = reference(PercentRequest, optional=True)
    in_effect_at = models.DateTimeField(null=True, blank=True)
    window_ends_at = models.DateTimeField(null=True, blank=True)
    incident_hit = models.BooleanField(default=False)
    # The Worker deployment serving the environment when the window began (its build).
    build_deployment = models.ForeignKey(
        "WorkerDeployment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

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


def offset_label(offset) -> str:
    """A check-in's name from its offset, in the active language: "T+0", "T+30 min", "T+2 h"."""
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "T+0"
    if minutes % 60:
        return _("T+%(minutes)s min") % {"minutes": minutes}
    return _("T+%(hours)s h") % {"hours": minutes // 60}


class CheckIn(models.Model):
    """One of the runbook's check-ins on a phase's timeline (T+0, T+30 min, … T+24 h).

    ``label`` keeps its name in English for the record (the audit trail's detail); a page or a
    message names it from its ``offset`` in its reader's language (``label_words``)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="check_ins")
    label = models.CharField(max_length=16)
    offset = models.DurationField()
    purpose = models.CharField(max_length=120)
    due_at = models.DateTimeField()
    # Acknowledged after this moment, the check-in counts as missed (acknowledged late).
    missed_after = models.DateTimeField()
    acknowledged_by = person(optional=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    # When #deployments was reminded that it is due (once; the decision's own is announced apart).
    reminded_at = models.DateTimeField(null=True, blank=True)
    # When the check-in was recorded (its window began on the dashboard), so a person could
    # acknowledge it from then on; empty on check-ins recorded before this was kept.
    recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["phase_run", "offset"]
        constraints = [
            at_most("note", limits.NOTE),
            models.UniqueConstraint(fields=["phase_run", "offset"], name="checkin_unique_offset"),
        ]

    def __str__(self):
        return f"{self.phase_run} {self.label}"

    @property
    def label_words(self) -> str:
        """The check-in's name in the active language, from its offset (whatever language the
        kept ``label`` was written in)."""
        return offset_label(self.offset)

    @property
    def elapsed_before_recorded(self) -> bool:
        """Its slot had closed before the check-in was recorded (a window that began in the past:
        restarted from a build's time, the demo's backdated window): no one could have
        acknowledged it in time, so it is never missed, nor late."""
        return self.recorded_at is not None and self.missed_after <= self.recorded_at

    def status(self, now) -> str:
        """upcoming, due, acknowledged, late (acknowledged after its slot), missed, or elapsed (its
        slot closed before it was recorded; marked for translation: the timeline shows them in
        its reader's language)."""
        if self.acknowledged_at:
            if self.acknowledged_at > self.missed_after and not self.elapsed_before_recorded:
                return gettext_noop("late")
            return gettext_noop("acknowledged")
        if now < self.due_at:
            return gettext_noop("upcoming")
        if now <= self.missed_after:
            return gettext_noop("due")
        return gettext_noop("elapsed") if self.elapsed_before_recorded else gettext_noop("missed")


class PhaseAttestation(models.Model):
    """A person's word on a criterion no metric covers; the newest of each kind counts."""

    class Kind(models.TextChoices):
        UPLOAD_FLOW = "upload_flow", gettext_lazy("Upload flow healthy, no orphaned uploads")
        TEAM_AGREES = "team_agrees", gettext_lazy("Team consensus: stable")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.BooleanField()
    note = models.TextField(validators=[MaxCharacters(limits.NOTE)])
    given_by = person()
    given_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-given_at", "-id"]
        constraints = [
            at_most("note", limits.NOTE),
            models.CheckConstraint(condition=~Q(note=""), name="phase_attestation_has_note"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {'yes' if self.value else 'no'} by {self.given_by}"
