"""Fields and the confirmable form the controls, the pre-flight and the environments share."""

from django import forms
from django.utils.translation import gettext as _

from .. import limits
from ..limits import LimitedText

PERCENT_ERRORS = {
    "required": "Enter a percent.",
    "invalid": "Percent must be a whole number from 0 to 100.",
    "min_value": "Percent must be a whole number from 0 to 100.",
    "max_value": "Percent must be a whole number from 0 to 100.",
}


class ReasonField(LimitedText):
    def __init__(self, **kwargs):
        kwargs.setdefault("limit", limits.REASON)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2}))
        kwargs.setdefault(
            "error_messages", {"required": "Give a reason: it goes into the audit trail."}
        )
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value.strip():
            raise forms.ValidationError(_("Give a reason: it goes into the audit trail."))
        return value.strip()


class PercentField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=100, error_messages=PERCENT_ERRORS, **kwargs)

    def to_python(self, value):
        # IntegerField accepts "10.0"; a percent written with decimals is a typo we refuse.
        if isinstance(value, str) and "." in value:
            raise forms.ValidationError(PERCENT_ERRORS["invalid"], code="invalid")
        return super().to_python(value)


# A phase tag as the edge names it; the API's schemas read the same pattern.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class TagField(forms.RegexField):
    def __init__(self, **kwargs):
        super().__init__(
            regex=TAG_PATTERN,
            max_length=32,
            error_messages={
                "required": _("Enter the phase tag, e.g. B2a."),
                "invalid": _("A tag is 1–32 letters, digits, '.', '_' or '-', e.g. B2a."),
            },
            **kwargs,
        )


class ConfirmableForm(forms.Form):
    """A control's form: filled in once, shown back as a confirmation, then sent confirmed.

    ``expected_version`` is the desired-config version the person saw; the service refuses the
    action when the config moved on meanwhile.
    """

    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, required=False)
    confirmed = forms.BooleanField(widget=forms.HiddenInput, required=False)
    version_required = True

    def clean_expected_version(self):
        value = self.cleaned_data.get("expected_version")
        if value is None and self.version_required:
            raise forms.ValidationError(_("Reload the page: the form lost the config version."))
        return value
