"""The preview suite's run and check are called what the people call them: PreviewRun and
PreviewCheck. The tables are renamed; the constraint and index names (``verification_*``) stay,
so nothing is rebuilt. The plan's help text cites docs/contracts.md. Django renames the content types; the four default permissions of each
model are renamed here, so whoever holds one keeps it."""

from django.db import migrations, models
import django.db.models.deletion

RENAMED = {"verificationrun": "previewrun", "verificationcheck": "previewcheck"}
LABELS = {"verificationrun": "verification run", "verificationcheck": "verification check"}
NEW_LABELS = {"previewrun": "preview run", "previewcheck": "preview check"}


def rename_permissions(apps, schema_editor, renamed=RENAMED, labels=NEW_LABELS):
    Permission = apps.get_model("auth", "Permission")
    for old, new in renamed.items():
        for verb in ("add", "change", "delete", "view"):
            Permission.objects.filter(
                content_type__app_label="rollout", codename=f"{verb}_{old}"
            ).update(codename=f"{verb}_{new}", name=f"Can {verb} {labels[new]}")


def restore_permissions(apps, schema_editor):
    rename_permissions(
        apps,
        schema_editor,
        renamed={new: old for old, new in RENAMED.items()},
        labels=LABELS,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("rollout", "0015_text_limits"),
    ]

    operations = [
        migrations.RenameModel(old_name="VerificationRun", new_name="PreviewRun"),
        migrations.RenameModel(old_name="VerificationCheck", new_name="PreviewCheck"),
        migrations.AlterField(
            model_name="previewrun",
            name="environment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="preview_runs",
                to="rollout.environment",
            ),
        ),
        migrations.AlterField(
            model_name="rolloutplan",
            name="decision_thresholds",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Overrides of the GO / HOLD / NO-GO matrix, e.g. {"go_max_error_percent": 1.0}; keys not given keep the defaults of docs/contracts.md (rollout.services.recommendation.Thresholds).',
            ),
        ),
        migrations.RunPython(rename_permissions, restore_permissions),
    ]
