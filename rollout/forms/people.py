"""A person's own settings."""

import zoneinfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ..models import Preferences


def time_zone_choices():
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    default = _("The site's default (%(zone)s)") % {"zone": settings.TIME_ZONE}
    return [("", default)] + [(zone, zone) for zone in zones]


def language_choices():
    return [("", _("Your browser's language"))] + list(settings.LANGUAGES)


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label=_("Show times in"),
        required=False,
        choices=time_zone_choices,
        help_text=_("Every page shows times in this zone; hover a time to see it in UTC."),
        error_messages={"invalid_choice": _("%(value)s is not a time zone we know.")},
    )
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=language_choices,
        error_messages={"invalid_choice": _("%(value)s is not a language we offer.")},
    )

    class Meta:
        model = Preferences
        fields = ["time_zone", "language"]


class LanguageForm(forms.Form):
    """The header's switcher: one language, and the page to go back to."""

    language = forms.ChoiceField(
        choices=settings.LANGUAGES,
        error_messages={"invalid_choice": _("%(value)s is not a language we offer.")},
    )
    next = forms.CharField(required=False)
