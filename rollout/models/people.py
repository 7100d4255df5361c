"""What a person chooses for themselves."""

from django.conf import settings
from django.db import models


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
