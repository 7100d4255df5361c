"""On PostgreSQL, the audit table refuses UPDATE and DELETE. TRUNCATE is refused too, by a
second trigger on the same function (migration 0012); a truncated or shortened table is
detected by ``verify_audit`` against the chain's checkpoints kept outside the database."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION rollout_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused on rollout_auditentry', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER rollout_audit_append_only
    BEFORE UPDATE OR DELETE ON rollout_auditentry
    FOR EACH ROW EXECUTE FUNCTION rollout_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS rollout_audit_append_only ON rollout_auditentry;
DROP FUNCTION IF EXISTS rollout_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("rollout", "0002_roles")]

    operations = [migrations.RunPython(forward, backward)]
