"""Making API tokens on the settings pages."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rollout import roles

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=64,
        help_text=gettext_lazy("What uses it, e.g. “laptop CLI” or “deploy pipeline”."),
        error_messages={
            "required": gettext_lazy("Name the token: the audit trail shows its name.")
        },
    )
    days = forms.TypedChoiceField(
        label=gettext_lazy("Expires after"), choices=EXPIRY_CHOICES, coerce=int, initial=90
    )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError(_("Name the token: the audit trail shows its name."))
        return name


class ServiceTokenForm(TokenForm):
    account = forms.SlugField(
        label=gettext_lazy("Service account"),
        max_length=150,
        help_text=gettext_lazy(
            "The machine identity, e.g. “ci-deploy”; made on first use with the role below."
        ),
    )
    role = forms.ChoiceField(
        label=gettext_lazy("Role"),
        choices=[(role, role) for role in roles.ALL],
        initial=roles.VIEWER,
    )
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
