from django import forms
from django.utils.translation import gettext as _

from rollout import limits
from rollout.limits import LimitedText

from .models import HealthCheck


class DriftDecisionForm(forms.Form):
    """Adopt or overwrite a KV value changed outside the dashboard.

    ``kv_hash`` and ``expected_version`` are what the person saw: if KV or the desired config
    moved on since, the decision is refused rather than applied to something else. Sent first
    without ``confirmed``, it is shown back as a confirmation naming the change.
    """

    reason = LimitedText(limit=limits.REASON, widget=forms.Textarea(attrs={"rows": 2}))
    kv_hash = forms.RegexField(regex=r"^[0-9a-f]{64}$", widget=forms.HiddenInput)
    expected_version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    confirmed = forms.BooleanField(widget=forms.HiddenInput, required=False)

    def clean_reason(self):
        reason = self.cleaned_data["reason"]
        if len(reason) < 5:
            raise forms.ValidationError(_("Say in a few words why (at least 5 characters)."))
        return reason


class CheckFilterForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=[("", "all")] + list(HealthCheck.Verdict.choices), required=False
    )
