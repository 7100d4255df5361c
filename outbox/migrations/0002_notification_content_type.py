"""The model's content type moves with it, so the permissions on notifications (and the roles
that hold them) follow it to the outbox instead of being left behind and created anew."""

from django.db import migrations


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    old = ContentType.objects.filter(app_label="monitoring", model="notification").first()
    if old is None:
        return
    if ContentType.objects.filter(app_label="outbox", model="notification").exists():
        return  # created already (a database migrated before this step): keep both as they are
    old.app_label = "outbox"
    old.save(update_fields=["app_label"])


def move_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="outbox", model="notification").update(
        app_label="monitoring"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0001_initial"),
        ("monitoring", "0102_notification_moves_to_outbox"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(move_content_type, move_back)]
