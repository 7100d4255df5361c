"""PagerDuty as a notification channel: the channel choice, the incident's dedup key
and the event action (trigger / resolve) of each message.

Numbered 0100 so it does not clash with migrations added beside it; its dependency is the latest
monitoring migration at the time it was written."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0003_sample_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="dedup_key",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="notification",
            name="event_action",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AlterField(
            model_name="notification",
            name="channel",
            field=models.CharField(
                choices=[
                    ("slack_deployments", "Slack #deployments"),
                    ("slack_incidents", "Slack #incidents"),
                    ("pagerduty", "PagerDuty"),
                ],
                max_length=32,
            ),
        ),
    ]
