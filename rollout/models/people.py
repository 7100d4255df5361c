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
    # One of settings.LANGUAGES; empty means the browser's (Accept-Language), else English.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self):
        return f"{self.user} preferences"


class ServiceAccount(models.Model):
    """A machine identity (a pipeline, a bot): a Django user with no usable password, in exactly
    one role group, that acts only through its service tokens (``api.ApiToken``).

    It may request a raise and cancel its own request, but it never approves or rejects a
    raise and never signs a decision (rollout/services/controls.py, signoff.py): those are a
    person's acts, and whoever holds its token may be the person who asked."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account"
    )
    description = models.CharField(max_length=200, blank=True)
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
