from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rollout import limits
from rollout.limits import LimitedText

from .models import AlertRule


class PolicyForm(forms.Form):
    min_requests_per_minute = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        label=gettext_lazy("Traffic guard: fewest requests per minute a rule may judge"),
    )
    auto_emergency_stop = forms.BooleanField(
        required=False,
        label=gettext_lazy(
            "A firing critical native-5xx rule triggers the emergency stop by itself"
        ),
    )
    overwhelming_evidence = forms.BooleanField(
        required=False,
        label=(
            gettext_lazy(
                "Overwhelming evidence: the critical native-5xx rule fires at once, "
                "without its duration, when the rate's 99.9-percent lower bound is far above "
                "its threshold"
            )
        ),
    )
    overwhelming_multiple = forms.FloatField(
        min_value=1,
        max_value=100,
        label=gettext_lazy(
            "Overwhelming: lower bound above this many times the critical threshold"
        ),
    )
    overwhelming_min_requests = forms.IntegerField(
        min_value=1,
        max_value=10_000_000,
        label=gettext_lazy("Overwhelming: fewest native requests the evidence rests on"),
    )
    reason = LimitedText(
        limit=limits.REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Recorded in the audit trail."),
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Say why the alert settings change."))
        return reason


class RuleForm(forms.Form):
    """One rule's row. The prefix is the rule's name, so a row cannot edit another rule."""

    threshold = forms.FloatField(min_value=0)
    for_minutes = forms.IntegerField(
        min_value=0, max_value=1440, label=gettext_lazy("for (minutes)")
    )
    severity = forms.ChoiceField(choices=AlertRule.Severity.choices)
    enabled = forms.BooleanField(required=False)

    def __init__(self, *args, rule: AlertRule, **kwargs):
        self.rule = rule
        super().__init__(*args, prefix=rule.name, **kwargs)

    def clean_threshold(self):
        threshold = self.cleaned_data["threshold"]
        percent_kinds = (AlertRule.Kind.NATIVE_5XX, AlertRule.Kind.COHORT_SHARE)
        if self.rule.kind in percent_kinds and threshold > 100:
            raise forms.ValidationError(_("A percentage cannot be above 100."))
        return threshold


def rule_values(rule: AlertRule) -> dict:
    """The rule's values of the fields ``RuleForm`` edits."""
    return {name: getattr(rule, name) for name in RuleForm.base_fields}
