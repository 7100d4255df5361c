"""The audit trail: one append-only, chained entry per act or refusal."""

from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .environments import Environment
from .fields import person, reference


class AuditEntry(models.Model):
    """Append-only record of every action and automatic act, chained by hash.

    ``entry_hash`` is an HMAC-SHA256, under the key named by ``key_id``, of the entry's content
    and the previous entry's hash: changing or removing a stored entry breaks the chain from
    there on, and without the key (which never enters the database) nobody can re-seal it
    (``manage.py verify_audit``, rollout/services/audit.py). Entries written before the chain was
    keyed have an empty ``key_id`` and a plain SHA-256. The newest entry is checkpointed outside the
    database, which exposes deleted newest entries and a truncated table. On PostgreSQL
    triggers refuse UPDATE, DELETE (migration 0003) and TRUNCATE (migration 0012).
    """

    class Outcome(models.TextChoices):
        OK = "ok", gettext_lazy("Ok")
        REFUSED = "refused", gettext_lazy("Refused")
        FAILED = "failed", gettext_lazy("Failed")
        PENDING = "pending", gettext_lazy("Pending")

    created_at = models.DateTimeField(default=timezone.now)
    actor = person(optional=True)
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    environment = reference(Environment, optional=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK)
    detail = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # The channel a person acted through when it was not a page: "slack:U024BE7LH" (their Slack
    # user id), "token <name> (<id>)" for the API. Empty for a page, a command or an automatic act.
    via = models.CharField(max_length=200, blank=True, default="")
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
        "PreviewRun": "rollout:preview_run",
        # Entries are never rewritten: those written before the model was renamed keep its old name.
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
