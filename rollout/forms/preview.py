"""Starting a preview suite run."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import limits
from ..limits import LimitedText


class PreviewRunForm(forms.Form):
    """The suite runs against the Worker version live on preview (``reads_version``): the build
    is typed only as a fallback, with the reason. Where preview's version is not read, the
    build is typed."""

    build = forms.CharField(
        label=gettext_lazy("Build on preview"),
        max_length=100,
        required=False,
        help_text=gettext_lazy(
            "The deployment id or commit deployed to preview; it becomes the "
            "service's current build, which the production pre-flight checks."
        ),
        error_messages={"max_length": gettext_lazy("A build name is at most 100 characters.")},
    )
    build_reason = LimitedText(
        label=gettext_lazy("Why you type the build"),
        limit=limits.REASON,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, reads_version: bool = False, **kwargs):
        self.reads_version = reads_version
        super().__init__(*args, **kwargs)

    def clean_build(self):
        build = " ".join(self.cleaned_data.get("build", "").split())
        if not build and not self.reads_version:
            raise forms.ValidationError(
                _("Name the build deployed to preview, e.g. its deployment id.")
            )
        return build

    def clean_build_reason(self):
        return self.cleaned_data.get("build_reason", "").strip()
