"""Forms of a rollout's phases: notes, check-ins, attestations, starting a phase."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import LimitedText
from ..models import PhaseAttestation
from .fields import ConfirmableForm, ReasonField, TagField


class NoteForm(forms.Form):
    """A check-in acknowledgement or a withdrawal: a short note is all it takes."""

    note = LimitedText(
        limit=limits.NOTE, error_messages={"required": gettext_lazy("Write a short note.")}
    )

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(_("Write a short note."))
        return note


class PhaseAttestationForm(NoteForm):
    kind = forms.ChoiceField(choices=PhaseAttestation.Kind.choices)
    value = forms.TypedChoiceField(
        choices=[("yes", "yes"), ("no", "no")],
        coerce=lambda value: value == "yes",
        error_messages={"invalid_choice": gettext_lazy("Answer yes or no.")},
    )


class StartPhaseForm(ConfirmableForm):
    tag = TagField(widget=forms.HiddenInput)
    reason = ReasonField()
    window_override_reason = LimitedText(
        label=gettext_lazy("Reason for starting outside the deploy window"),
        required=False,
        limit=limits.REASON,
        widget=forms.Textarea(attrs={"rows": 1}),
    )

    def clean_window_override_reason(self):
        return self.cleaned_data.get("window_override_reason", "").strip()


class BuildChoiceForm(forms.Form):
    """A person's answer to a new build inside a window: restart the window, or keep it."""

    choice = forms.ChoiceField(
        choices=[("restart", "Restart the window from the new build"), ("keep", "Keep the window")],
        error_messages={"invalid_choice": gettext_lazy("Choose: restart the window or keep it.")},
    )
    reason = LimitedText(limit=limits.REASON, required=False)

    def clean(self):
        data = super().clean()
        data["reason"] = data.get("reason", "").strip()
        if data.get("choice") == "keep" and not data["reason"]:
            self.add_error("reason", "Say why the window's evidence still holds for the new build.")
        return data
