"""A person's own settings."""

import zoneinfo

from django import forms
from django.conf import settings

from ..models import Preferences


def time_zone_choices():
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [("", f"The site's default ({settings.TIME_ZONE})")] + [(zone, zone) for zone in zones]


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label="Show times in",
        required=False,
        choices=time_zone_choices,
        help_text="Every page shows times in this zone; hover a time to see it in UTC.",
        error_messages={"invalid_choice": "%(value)s is not a time zone we know."},
    )

    class Meta:
        model = Preferences
        fields = ["time_zone"]
