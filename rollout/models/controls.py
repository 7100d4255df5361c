"""A requested percent increase waiting for a second person's approval."""

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import MaxCharacters, at_most
from .environments import PERCENT_VALIDATORS, ConfigChange, Environment
from .fields import person


class PercentRequest(models.Model):
    """A request to raise the canary percent, waiting for a second person's approval.

    Lowering needs no approval and never creates one of these.
    """

    class State(models.TextChoices):
        PENDING = "pending", gettext_lazy("Pending")
        APPROVED = "approved", gettext_lazy("Approved")
        REJECTED = "rejected", gettext_lazy("Rejected")
        STALE = "stale", gettext_lazy("stale (config changed)")
        CANCELLED = "cancelled", gettext_lazy("Cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="percent_requests"
    )
    requested_by = person()
    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(validators=[MaxCharacters(limits.REASON)])
    base_version = models.PositiveIntegerField()
    from_percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    to_percent = models.PositiveSmallIntegerField(validators=PERCENT_VALIDATORS)
    from_tag = models.CharField(max_length=32)
    to_tag = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    decided_by = person(optional=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, validators=[MaxCharacters(limits.NOTE)])
    change = models.OneToOneField(
        ConfigChange, null=True, blank=True, on_delete=models.PROTECT, related_name="approval"
    )
    # The change that wrote a new version while this request was pending, closing it as stale.
    superseded_by = models.ForeignKey(
        ConfigChange,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_requests",
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
        """ "production: 10% → 25%, tag B2b", in the active language."""
        return _("%(name)s: %(canary_percent)s%% → %(canary_percent2)s%%, tag %(canary_tag)s") % {
            "name": self.environment.name,
            "canary_percent": self.from_percent,
            "canary_percent2": self.to_percent,
            "canary_tag": self.to_tag,
        }

    @classmethod
    def supersede_pending(cls, change: ConfigChange) -> list["PercentRequest"]:
        """Close every pending raise of the change's environment as stale: each was asked on a
        version ``change`` replaced, so what its approver would be shown ("10% → 25%") is no
        longer what it would do. Returns the requests it closed."""
        pending = list(
            cls.objects.filter(environment=change.environment, state=cls.State.PENDING)
            .select_for_update(of=("self",))
            .select_related("environment", "requested_by")
        )
        cls.objects.filter(pk__in=[item.pk for item in pending], state=cls.State.PENDING).update(
            state=cls.State.STALE,
            decided_at=timezone.now(),
            decision_note=f"superseded by version {change.version} ({change.kind})",
            superseded_by=change,
        )
        return pending

    def decide(self, *, state: str, by, note: str = "") -> bool:
        """Compare-and-set from pending; False when someone else decided first."""
        decided = PercentRequest.objects.filter(pk=self.pk, state=self.State.PENDING).update(
            state=state,
            decided_by=by,
            decided_at=timezone.now(),
            decision_note=note,
        )
        self.refresh_from_db()
        return bool(decided)
