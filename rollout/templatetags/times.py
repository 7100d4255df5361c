"""How a page shows a moment: in the viewer's time zone, to the minute or second, with the same
moment in UTC in the tooltip and machine-readable in ``datetime``. Every page uses ``|when`` so no
page shows a raw ISO string or microseconds; JSON and CSV exports keep ISO 8601."""

from datetime import UTC, datetime, timedelta

from django import template
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

register = template.Library()

FORMATS = {
    "": "Y-m-d H:i T",
    "seconds": "Y-m-d H:i:s T",
    "short": "d M H:i:s",
    "minutes": "d M H:i",
    "time": "H:i",
}


def as_moment(value):
    """A datetime, or an ISO 8601 string (evidence documents are JSON), as an aware datetime;
    None for anything else."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        return None
    return value


def in_words(value, style="") -> str:
    """A moment inside a sentence, as ``|when`` shows it but as plain text: in the active time
    zone (the viewer's on a page; UTC where a sentence is kept or shared), e.g. "2026-12-03
    14:05 CET". Text that is not a moment is returned as it is."""
    moment = as_moment(value)
    if moment is None:
        return "" if value is None else str(value)
    return date_format(timezone.localtime(moment), FORMATS.get(style, FORMATS[""]))


@register.filter
def when(value, style=""):
    """``{{ change.requested_at|when }}`` or ``|when:"seconds"`` / ``"short"`` / ``"time"``.

    Empty for a missing moment, so ``|when|default:"—"`` works; text that is not a moment is
    shown as it is."""
    moment = as_moment(value)
    if moment is None:
        return "" if value in (None, "") else value
    utc = moment.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        in_words(moment, style),
    )


@register.simple_tag
def now_when(style=""):
    """The present moment, shown like every other: ``{% now_when %}``."""
    return when(timezone.now(), style)


@register.filter
def hours(duration):
    """A duration in hours, as the runbook names its windows: ``{{ phase.min_observation|hours }}``
    gives "24 h" (or "1.5 h", "1,5 h" in German) instead of "1 day, 0:00:00"."""
    if not isinstance(duration, timedelta):
        return duration
    return f"{floatformat(duration.total_seconds() / 3600, -1)} h"
