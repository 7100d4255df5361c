"""Forms of the guarded controls: one small form per action."""

from django import forms
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import LimitedText
from .fields import ConfirmableForm, PercentField, ReasonField, TagField


class SetPercentForm(ConfirmableForm):
    canary_percent = PercentField(label=gettext_lazy("New percent"))
    canary_tag = TagField(label=gettext_lazy("Tag"))
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
    # Pressed on the overview: the answer goes back there (carried through the confirmation).
    back = forms.ChoiceField(
        choices=[("", ""), ("overview", "overview")], required=False, widget=forms.HiddenInput
    )


class ApprovalForm(DecisionNoteForm):
    """Approving is confirmed like every control: the first post shows what will be applied."""

    confirmed = forms.BooleanField(widget=forms.HiddenInput, required=False)
