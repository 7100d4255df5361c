"""Starting a preview suite run."""

from django import forms


class PreviewRunForm(forms.Form):
    build = forms.CharField(
        label="Build on preview",
        max_length=100,
        help_text="The deployment id or commit deployed to preview; it becomes the service's "
        "current build, which the production pre-flight checks.",
        error_messages={
            "required": "Name the build deployed to preview, e.g. its deployment id.",
            "max_length": "A build name is at most 100 characters.",
        },
    )

    def clean_build(self):
        build = " ".join(self.cleaned_data["build"].split())
        if not build:
            raise forms.ValidationError(
                "Name the build deployed to preview, e.g. its deployment id."
            )
        return build
