"""The GO / HOLD / NO-GO decision at the end of a window, its signatures and the post-mortem."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import MaxCharacters, at_most
from .environments import ConfigChange
from .fields import person, reference
from .phases import PhaseRun


class Decision(models.Model):
    """GO, HOLD or NO-GO for one phase window, with the frozen evidence its signers saw.

    It takes effect when a tech lead and a DevOps engineer, two different people, have both
    signed it on the same evidence (the digest). New evidence before the second signature
    invalidates the first.
    """

    class Outcome(models.TextChoices):
        GO = "go", gettext_lazy("GO")
        HOLD = "hold", gettext_lazy("HOLD")
        NO_GO = "no_go", gettext_lazy("NO-GO")

    class State(models.TextChoices):
        OPEN = "open", gettext_lazy("collecting signatures")
        EFFECTIVE = "effective", gettext_lazy("in effect")
        WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase_run = models.ForeignKey(PhaseRun, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    recommendation = models.CharField(max_length=8, choices=Outcome.choices)
    evidence = models.JSONField()
    evidence_digest = models.CharField(max_length=64)
    justification = models.TextField(blank=True, validators=[MaxCharacters(limits.JUSTIFICATION)])
    early = models.BooleanField(
        default=False, help_text=gettext_lazy("signed before the window ended")
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = person()
    effective_at = models.DateTimeField(null=True, blank=True)
    closed_note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    result_change = reference(ConfigChange, optional=True)
    next_phase_run = reference(PhaseRun, optional=True)

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
        TECH_LEAD = "tech_lead", gettext_lazy("Tech lead")
        DEVOPS = "devops", gettext_lazy("DevOps")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="signatures")
    signer = person()
    role = models.CharField(max_length=16, choices=Role.choices)
    evidence_digest = models.CharField(max_length=64)
    justification = models.TextField(blank=True, validators=[MaxCharacters(limits.JUSTIFICATION)])
    signed_at = models.DateTimeField(default=timezone.now)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)
    # Why, as facts a page says in its reader's language (rollout/templatetags/evidence_words.py):
    # {"evidence_changes": [...]} (evidence.changes_between) or {"withdrawn_by": username}.
    # Empty on signatures from before it was kept: they show invalidated_reason.
    invalidated_because = models.JSONField(default=dict, blank=True)

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
    # The timeline as people edit it, started in English for the record from ``timeline_facts``
    # (what the audit trail held at the NO-GO), which its page says in its reader's language
    # until someone edits it (``signoff.timeline_shown``).
    timeline = models.TextField(validators=[MaxCharacters(limits.POST_MORTEM_SECTION)])
    timeline_facts = models.JSONField(default=dict, blank=True)
    root_cause = models.TextField(
        blank=True, validators=[MaxCharacters(limits.POST_MORTEM_SECTION)]
    )
    fix_plan = models.TextField(blank=True, validators=[MaxCharacters(limits.POST_MORTEM_SECTION)])
    rerollout_date = models.DateField(null=True, blank=True)
    owner = person(optional=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = person(optional=True)

    class Meta:
        constraints = [
            at_most("timeline", limits.POST_MORTEM_SECTION),
            at_most("root_cause", limits.POST_MORTEM_SECTION),
            at_most("fix_plan", limits.POST_MORTEM_SECTION),
        ]

    def __str__(self):
        return f"post-mortem of {self.decision.phase_run}"
