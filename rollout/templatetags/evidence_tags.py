"""Filters for showing an evidence document, whose instants are ISO 8601 strings (it is JSON)."""

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def instant(value):
    """An ISO 8601 string as an aware datetime in the current time zone, for ``|date``; what does
    not parse is shown as it is."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    if timezone.is_naive(moment):
        return value
    return timezone.localtime(moment)
