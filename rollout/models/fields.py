"""Field definitions that recur across the models, each written once. The fields they make are
the same as written out, so using them changes no table."""

from django.conf import settings
from django.db import models


def person(*, optional: bool = False) -> models.ForeignKey:
    """The person who did what the row records (requested, decided, signed it…)."""
    return reference(settings.AUTH_USER_MODEL, optional=optional)


def reference(to, *, optional: bool = False) -> models.ForeignKey:
    """Another record this row names. It is kept as long as this row is (PROTECT), and has no
    reverse accessor."""
    return models.ForeignKey(
        to, null=optional, blank=optional, on_delete=models.PROTECT, related_name="+"
    )
