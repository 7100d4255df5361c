"""On PostgreSQL, a trigram index for the audit page's free-text filter.

The filter matches ``upper(<the searched columns joined by spaces>) LIKE upper('%text%')``;
without this index a rare word means reading all 100,000+ rows. The expression here and in
``rollout.audit_views.SEARCH_EXPRESSION`` must stay identical, or PostgreSQL will not use it.
Creating the extension needs a role allowed to (superuser, or pg_trgm trusted on PG 13+).
"""

from django.db import migrations

FORWARD = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS audit_text_trgm_idx ON rollout_auditentry
    USING gin (upper(reason || ' ' || detail || ' ' || action || ' ' || actor_label || ' ' || object_id) gin_trgm_ops);
"""
BACKWARD = "DROP INDEX IF EXISTS audit_text_trgm_idx;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("rollout", "0004_percent_requests")]

    operations = [migrations.RunPython(forward, backward)]
