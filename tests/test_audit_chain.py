import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from rollout import audit
from rollout.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(release_manager):
    made = [
        audit.record(
            action="config.percent_change",
            actor=release_manager,
            reason="go B2b",
            before={"canary_percent": 10},
            after={"canary_percent": 25},
        ),
        audit.record(action="config.written", system="kv-writer", detail="version 2"),
        audit.record(action="config.in_effect", system="kv-writer", detail="3.2 s"),
    ]
    return made


def test_an_intact_chain_verifies(entries, capsys):
    call_command("verify_audit")
    assert "3 entries verified" in capsys.readouterr().out
    assert entries[0].prev_hash == audit.GENESIS_HASH
    assert entries[1].prev_hash == entries[0].entry_hash


def _tamper(sql, params):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A person with direct database access, bypassing the append-only trigger.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE rollout_auditentry DISABLE TRIGGER rollout_audit_append_only"
            )
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE rollout_auditentry ENABLE TRIGGER rollout_audit_append_only"
            )


def test_a_changed_reason_is_detected(entries):
    _tamper("UPDATE rollout_auditentry SET reason = %s WHERE id = %s", ["nothing", entries[0].pk])
    with pytest.raises(CommandError, match=f"broken at entry #{entries[0].pk}: its content"):
        call_command("verify_audit")


def test_a_changed_actor_label_is_detected(entries):
    _tamper(
        "UPDATE rollout_auditentry SET actor_label = %s WHERE id = %s", ["ghost", entries[1].pk]
    )
    with pytest.raises(CommandError, match=f"#{entries[1].pk}"):
        call_command("verify_audit")


def test_a_removed_entry_is_detected(entries):
    _tamper("DELETE FROM rollout_auditentry WHERE id = %s", [entries[1].pk])
    with pytest.raises(CommandError, match=f"#{entries[2].pk}: its link"):
        call_command("verify_audit")


def test_a_recomputed_hash_still_breaks_the_next_link(entries):
    entry = AuditEntry.objects.get(pk=entries[0].pk)
    entry.reason = "forged"
    forged_hash = audit.compute_hash(entry, entry.prev_hash)
    _tamper(
        "UPDATE rollout_auditentry SET reason = %s, entry_hash = %s WHERE id = %s",
        ["forged", forged_hash, entry.pk],
    )
    with pytest.raises(CommandError, match=f"#{entries[1].pk}: its link"):
        call_command("verify_audit")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_update_and_delete(entries):
    for statement in (
        "UPDATE rollout_auditentry SET reason = 'x'",
        "DELETE FROM rollout_auditentry",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert AuditEntry.objects.count() == 3


def test_an_entry_needs_an_actor():
    with pytest.raises(ValueError):
        audit.record(action="x")
