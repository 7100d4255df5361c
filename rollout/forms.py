from django import forms

from integrations.kv_value import CanarySettings

from . import limits
from .limits import LimitedText

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
            raise forms.ValidationError("Give a reason: it goes into the audit trail.")
        return value.strip()


class PercentField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=100, error_messages=PERCENT_ERRORS, **kwargs)

    def to_python(self, value):
        # IntegerField accepts "10.0"; a percent written with decimals is a typo we refuse.
        if isinstance(value, str) and "." in value:
            raise forms.ValidationError(PERCENT_ERRORS["invalid"], code="invalid")
        return super().to_python(value)


class TagField(forms.RegexField):
    def __init__(self, **kwargs):
        super().__init__(
            regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
            max_length=32,
            error_messages={
                "required": "Enter the phase tag, e.g. B2a.",
                "invalid": "A tag is 1–32 letters, digits, '.', '_' or '-', e.g. B2a.",
            },
            **kwargs,
        )


class InitialConfigForm(forms.Form):
    canary_percent = PercentField(label="Percent", initial=0)
    canary_tag = TagField(label="Tag")
    reason = ReasonField(initial="Initial KV value written on connection")

    def canary_settings(self) -> CanarySettings:
        return CanarySettings(
            self.cleaned_data["canary_percent"], self.cleaned_data["canary_tag"], False
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
            raise forms.ValidationError("Reload the page: the form lost the config version.")
        return value


class SetPercentForm(ConfirmableForm):
    canary_percent = PercentField(label="New percent")
    canary_tag = TagField(label="Tag")
    reason = ReasonField()


class RollbackForm(ConfirmableForm):
    reason = ReasonField()


class LiftEmergencyForm(ConfirmableForm):
    reason = ReasonField()


class EmergencyStopForm(ConfirmableForm):
    # The stop acts on whatever version is current: speed is safety here.
    version_required = False
    reason = ReasonField(initial="Emergency stop (NOT-AUS)")


class DecisionNoteForm(forms.Form):
    note = LimitedText(limit=limits.NOTE, required=False, widget=forms.Textarea(attrs={"rows": 1}))


class AuditFilterForm(forms.Form):
    """The audit page's filters; every field optional, every bad value named."""

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    environment = forms.UUIDField(
        required=False, error_messages={"invalid": "Unknown environment id."}
    )
    since = forms.DateField(
        required=False,
        label="From",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        required=False,
        label="To",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    q = forms.CharField(required=False, max_length=200, label="Text")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The From date is after the To date.")
        return data
