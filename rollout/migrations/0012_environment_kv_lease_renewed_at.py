from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0011_checkin_reminded_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="kv_lease_renewed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
