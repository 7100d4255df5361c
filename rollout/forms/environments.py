"""The initial desired config of a newly connected environment."""

from django import forms
from django.utils.translation import gettext_lazy

from integrations.kv_value import CanarySettings

from .fields import PercentField, ReasonField, TagField


class InitialConfigForm(forms.Form):
    canary_percent = PercentField(label=gettext_lazy("Percent"), initial=0)
    canary_tag = TagField(label=gettext_lazy("Tag"))
    reason = ReasonField(initial="Initial KV value written on connection")

    def canary_settings(self) -> CanarySettings:
        return CanarySettings(
            self.cleaned_data["canary_percent"], self.cleaned_data["canary_tag"], False
        )
