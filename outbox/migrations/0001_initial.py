"""The outbox takes over the Notification model and its table from the monitoring app."""

import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    # The table was created by the monitoring app's migrations; it is taken over as it is.
    dependencies = [("monitoring", "0101_healthcheck_rate_limited")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Notification",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "public_id",
                            models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
                        ),
                        (
                            "channel",
                            models.CharField(
                                choices=[
                                    ("slack_deployments", "Slack #deployments"),
                                    ("slack_incidents", "Slack #incidents"),
                                    ("pagerduty", "PagerDuty"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("subject", models.CharField(max_length=200)),
                        ("payload", models.JSONField()),
                        ("related_object", models.CharField(blank=True, max_length=100)),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("sending", "Sending"),
                                    ("sent", "Sent"),
                                    ("failed", "Failed"),
                                ],
                                default="queued",
                                max_length=16,
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("last_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("last_answer", models.TextField(blank=True)),
                        ("dedup_key", models.CharField(blank=True, max_length=255)),
                        ("event_action", models.CharField(blank=True, max_length=16)),
                    ],
                    options={
                        "db_table": "monitoring_notification",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["state", "next_attempt_at"], name="notification_due_idx"
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("related_object", ""), _negated=True),
                                fields=("channel", "related_object"),
                                name="notification_once_per_event",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
