"""People: what a person chooses for themselves, and the machine identities that act through
service tokens."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Preferences(models.Model):
    """A person's own settings. No row means the site's defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    # An IANA name such as "Europe/Berlin"; empty means the site's DISPLAY_TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self):
        return f"{self.user} preferences"


class ServiceAccount(models.Model):
    """A machine identity (a pipeline, a bot): a Django user with no usable password, in exactly
    one role group, that acts only through its service tokens (``api.ApiToken``).

    Approving another's percent increase is a person's act: a service account may do it only
    when an admin gave it that right here (``may_approve``), on top of a role that approves,
    and never for a request of its own (rollout/services/controls.py). It never signs a decision:
    the sign-off needs two people."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account"
    )
    description = models.CharField(max_length=200, blank=True)
    may_approve = models.BooleanField(
        default=False,
        help_text="May approve another's percent increase, if its role approves.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.user.get_username()


def is_service_account(user) -> bool:
    """Whether ``user`` is a machine identity rather than a person."""
    return bool(getattr(user, "pk", None)) and ServiceAccount.objects.filter(user=user).exists()
