"""People: what a person chooses for themselves, and the machine identities that act through
service tokens."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy


class Preferences(models.Model):
    """A person's own settings. No row means the site's defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    # An IANA name such as "Europe/Berlin"; empty means the site's DISPLAY_TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True)
    # One of settings.LANGUAGES; empty means the browser's (Accept-Language), else English.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

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
        help_text=gettext_lazy("May approve another's percent increase, if its role approves."),
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


class CompanyAccount(models.Model):
    """The company identity a dashboard user signs in with: the provider's issuer and its
    subject, the one identifier OpenID Connect promises never to reassign (a changed email or
    username at the provider still signs in the same person)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_account"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    # The groups the provider named at the last sign-in, which gave the user their roles.
    groups = models.JSONField(default=list, blank=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="company_account_identity")
        ]

    def __str__(self):
        return f"{self.user} ({self.subject} at {self.issuer})"
