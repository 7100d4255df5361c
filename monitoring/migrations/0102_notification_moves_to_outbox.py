"""Notification moved to the outbox app. Its table (``monitoring_notification``) and rows stay;
only Django's idea of which app owns the model changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0101_healthcheck_rate_limited"),
        ("outbox", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Notification")],
            database_operations=[],
        ),
    ]
