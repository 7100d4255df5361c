"""API tokens: personal ones (act as their owner) and service ones (act as a service account)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy


class ApiToken(models.Model):
    """A bearer token for /api/v1. Only a SHA-256 of the whole token is kept: it is shown once,
    when it is made (api/tokens.py). ``prefix`` finds the row and names the token in lists.

    A personal token acts as its owner with the owner's roles as they are at each request; a
    service token acts as its service account (``rollout.ServiceAccount``) in that account's one
    role. Neither can do more than its user."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", gettext_lazy("Personal")
        SERVICE = "service", gettext_lazy("Service")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="api_token_has_name"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="api_token_expires_later"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix})"

    @property
    def label(self) -> str:
        """How the audit trail names the token: its name and id."""
        return f"token {self.name} ({self.public_id})"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"
