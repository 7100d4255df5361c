"""The audit page's filters."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


class AuditFilterForm(forms.Form):
    """The audit page's filters; every field optional, every bad value named."""

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    environment = forms.UUIDField(
        required=False, error_messages={"invalid": gettext_lazy("Unknown environment id.")}
    )
    since = forms.DateField(
        required=False,
        label=gettext_lazy("From"),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        required=False,
        label=gettext_lazy("To"),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    q = forms.CharField(required=False, max_length=200, label=gettext_lazy("Text"))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("The From date is after the To date."))
        return data
