"""Forms of the sign-off and the post-mortem."""

import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import LimitedText
from ..models import Decision, PostMortem, Signature

DIGEST = re.compile(r"^[0-9a-f]{64}$")


class SignForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Decision.Outcome.choices,
        error_messages={"invalid_choice": gettext_lazy("Choose GO, HOLD or NO-GO.")},
    )
    role = forms.ChoiceField(
        choices=Signature.Role.choices,
        error_messages={"invalid_choice": gettext_lazy("Sign as tech lead or DevOps.")},
    )
    evidence_digest = forms.CharField(
        max_length=64,
        widget=forms.HiddenInput,
        error_messages={
            "required": gettext_lazy("The evidence you saw is missing: reload the page.")
        },
    )
    justification = LimitedText(
        limit=limits.JUSTIFICATION, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_evidence_digest(self):
        digest = self.cleaned_data["evidence_digest"].strip().lower()
        if not DIGEST.match(digest):
            raise forms.ValidationError(_("The evidence you saw is not readable: reload the page."))
        return digest


class PostMortemForm(forms.ModelForm):
    root_cause = LimitedText(
        label=gettext_lazy("Root cause"),
        limit=limits.POST_MORTEM_SECTION,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    fix_plan = LimitedText(
        label=gettext_lazy("Fix plan"),
        limit=limits.POST_MORTEM_SECTION,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    timeline = LimitedText(
        label=gettext_lazy("Timeline"),
        limit=limits.POST_MORTEM_SECTION,
        widget=forms.Textarea(attrs={"rows": 10}),
    )

    class Meta:
        model = PostMortem
        fields = ["root_cause", "fix_plan", "rerollout_date", "owner", "timeline"]
        widgets = {"rerollout_date": forms.DateInput(attrs={"type": "date"})}
        labels = {"rerollout_date": gettext_lazy("Re-rollout date"), "owner": gettext_lazy("Owner")}
        error_messages = {"rerollout_date": {"invalid": gettext_lazy("Give a date as YYYY-MM-DD.")}}
