from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0013_admin_sees_login_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="kv_lease_renewed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
