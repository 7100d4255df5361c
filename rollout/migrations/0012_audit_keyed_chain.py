"""The audit chain becomes keyed: each entry records the id of the HMAC key that sealed it
(empty for the plain SHA-256 entries written before). On PostgreSQL the audit table now also
refuses TRUNCATE, as it refuses UPDATE and DELETE (migration 0003)."""

from django.db import migrations, models

FORWARD = """
CREATE TRIGGER rollout_audit_no_truncate
    BEFORE TRUNCATE ON rollout_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION rollout_audit_append_only();
"""
BACKWARD = "DROP TRIGGER IF EXISTS rollout_audit_no_truncate ON rollout_auditentry;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("rollout", "0011_checkin_reminded_at")]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.RunPython(forward, backward),
    ]
