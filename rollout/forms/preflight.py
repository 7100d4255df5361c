"""The pre-flight's attestations."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import LimitedText
from ..models import PreflightAttestation
from ..services.preflight import split_names

Kind = PreflightAttestation.Kind


class AttestationForm(forms.Form):
    """One attestation; which fields matter depends on the kind (from the URL)."""

    names = LimitedText(
        limit=limits.NAMES,
        required=False,
        help_text=gettext_lazy("Separated by commas."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    note = LimitedText(limit=limits.NOTE, required=False, widget=forms.Textarea(attrs={"rows": 1}))

    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def clean_names(self):
        names = split_names(self.cleaned_data.get("names", ""))
        if self.kind == Kind.ONCALL_CONFIRMED and not names:
            raise forms.ValidationError(_("Name the person (or people) on call."))
        if self.kind == Kind.ENGINEERS_AVAILABLE and len(names) < 2:
            raise forms.ValidationError(
                "Name two or more engineers available for the next 4 hours"
                + (f" (only {names[0]} given)." if names else ".")
            )
        return names

    def clean_note(self):
        note = self.cleaned_data.get("note", "").strip()
        if self.kind == Kind.TEAM_NOTIFIED and not note:
            raise forms.ValidationError(
                _("Say where and how the team was told (the Slack post was not sent from here).")
            )
        if self.kind == Kind.VERSION_SPLIT and not note:
            raise forms.ValidationError(
                _(
                    "Say why the phase may start while Cloudflare splits traffic between "
                    "two versions."
                )
            )
        return note
