import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from rollout.models import AuditEntry
from rollout.services import audit

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


# --- the keyed chain under attack, as the database owner with raw SQL --------------------------

WRONG_KEY = "an-attackers-guess-at-the-audit-key-0123456789"


def _owner_sql(*statements):
    """Run statements as the database owner with every trigger on the audit table off, as an
    attacker with the owner's password can."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE rollout_auditentry DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("ALTER TABLE rollout_auditentry ENABLE TRIGGER USER")


def _reseal_from(first_id, *, key_id, keys, edit=None):
    """Edit the entry ``first_id`` (``edit`` changes its reason) and re-hash it and every entry
    after it: plain SHA-256 (``key_id=""``) or an HMAC under ``keys``."""
    rows = list(AuditEntry.objects.filter(id__gte=first_id).order_by("id"))
    previous = rows[0].prev_hash
    statements = []
    for row in rows:
        if row.pk == first_id and edit:
            row.reason = edit
        row.key_id = key_id
        row.prev_hash = previous
        row.entry_hash = previous = audit.compute_hash(row, previous, keys)
        statements.append(
            (
                "UPDATE rollout_auditentry SET reason = %s, key_id = %s, prev_hash = %s, "
                "entry_hash = %s WHERE id = %s",
                [row.reason, row.key_id, row.prev_hash, row.entry_hash, row.pk],
            )
        )
    _owner_sql(*statements)


@pytest.fixture
def checkpointed(entries, settings, tmp_path):
    """The three entries with their head checkpointed to a local file."""
    from rollout.services.audit_checkpoints import write_checkpoint

    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "audit-checkpoints.jsonl")
    assert write_checkpoint() == {"file": "written"}
    return entries


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the attacks use PostgreSQL's triggers"
)


def test_new_entries_are_sealed_with_the_configured_key(entries, settings):
    assert {entry.key_id for entry in entries} == {settings.AUDIT_HMAC_KEY_ID}
    entry = entries[0]
    assert entry.entry_hash == audit.compute_hash(entry, entry.prev_hash)
    entry.key_id = ""
    assert entry.entry_hash != audit.compute_hash(entry, entry.prev_hash)


@postgresql_only
def test_an_edit_rehashed_with_plain_sha256_is_detected(entries):
    _reseal_from(entries[1].pk, key_id="", keys={}, edit="forged")
    with pytest.raises(
        CommandError, match=f"broken at entry #{entries[1].pk}: it is unkeyed but follows keyed"
    ):
        call_command("verify_audit")


@postgresql_only
def test_the_whole_chain_rehashed_as_unkeyed_is_caught_by_the_checkpoint(checkpointed):
    _reseal_from(checkpointed[0].pk, key_id="", keys={}, edit="forged")
    with pytest.raises(
        CommandError,
        match=f"entry #{checkpointed[2].pk} no longer has the hash checkpointed",
    ):
        call_command("verify_audit")


@postgresql_only
def test_an_edit_resealed_with_a_wrong_key_is_detected(entries, settings):
    keys = {settings.AUDIT_HMAC_KEY_ID: WRONG_KEY}
    _reseal_from(entries[1].pk, key_id=settings.AUDIT_HMAC_KEY_ID, keys=keys, edit="forged")
    with pytest.raises(
        CommandError, match=f"broken at entry #{entries[1].pk}: its content does not match its HMAC"
    ):
        call_command("verify_audit")


@postgresql_only
def test_deleted_newest_entries_are_reported_with_their_ids(checkpointed):
    first, second, third = (entry.pk for entry in checkpointed)
    _owner_sql(("DELETE FROM rollout_auditentry WHERE id > %s", [first]))
    assert audit.verify_chain().intact  # what is left still chains: only the checkpoint tells
    with pytest.raises(
        CommandError, match=f"entries after #{first} were deleted: #{second} to #{third}"
    ):
        call_command("verify_audit")


@postgresql_only
def test_deleted_newest_entries_are_reported_after_new_ones_were_added(checkpointed):
    first, _, third = (entry.pk for entry in checkpointed)
    _owner_sql(("DELETE FROM rollout_auditentry WHERE id > %s", [first]))
    audit.record(action="config.written", system="kv-writer", detail="after the deletion")
    with pytest.raises(CommandError, match=f"entries after #{first} were deleted: .* to #{third}"):
        call_command("verify_audit")


@postgresql_only
def test_a_truncated_table_is_reported(checkpointed):
    _owner_sql(("TRUNCATE rollout_auditentry", []))
    assert not AuditEntry.objects.exists()
    with pytest.raises(CommandError, match="the audit table is empty.*the table was truncated"):
        call_command("verify_audit")


@postgresql_only
def test_deleted_oldest_entries_are_reported_at_the_first_entry_left(entries):
    _owner_sql(("DELETE FROM rollout_auditentry WHERE id = %s", [entries[0].pk]))
    with pytest.raises(
        CommandError,
        match=f"broken at entry #{entries[1].pk}: it is the oldest entry left but does not start",
    ):
        call_command("verify_audit")


@postgresql_only
def test_postgresql_refuses_truncate(entries):
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE rollout_auditentry")
    assert AuditEntry.objects.count() == 3


def test_an_intact_chain_matches_its_checkpoint(checkpointed, capsys):
    call_command("verify_audit")
    assert f"matches checkpoint #{checkpointed[2].pk}" in capsys.readouterr().out


# --- key rotation and legacy entries -------------------------------------------------------------

OLD_KEY = "the-audit-key-of-last-year-0123456789abcdefghij"


def test_entries_under_a_rotated_out_key_verify_while_it_is_configured(settings, capsys):
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = OLD_KEY, "2025"
    old = audit.record(action="config.written", system="kv-writer")
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "the-new-audit-key-" + "n" * 30, "2026"
    new = audit.record(action="config.written", system="kv-writer")
    assert (old.key_id, new.key_id) == ("2025", "2026")

    settings.AUDIT_HMAC_OLD_KEYS = {"2025": OLD_KEY}
    call_command("verify_audit")
    assert "2 entries verified" in capsys.readouterr().out

    settings.AUDIT_HMAC_OLD_KEYS = {}
    with pytest.raises(
        CommandError, match=f"broken at entry #{old.pk}: it was sealed with audit key '2025'"
    ):
        call_command("verify_audit")


def test_legacy_entries_before_the_keyed_ones_verify_and_are_counted(release_manager, capsys):
    previous = audit.GENESIS_HASH
    for number in range(2):  # as written before the chain was keyed: plain SHA-256, no key id
        entry = AuditEntry(actor_label="kv-writer", action="config.written", detail=f"{number}")
        entry.prev_hash = previous
        entry.entry_hash = previous = audit.compute_hash(entry, previous)
        entry.save()
    audit.record(action="config.percent_change", actor=release_manager, reason="go")
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "2 legacy entries" in out and "3 entries verified" in out


# --- the key's settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "check_id"), [("", "rollout.E601"), ("short-key", "rollout.E602")]
)
def test_a_secure_deployment_does_not_start_without_a_proper_key(settings, key, check_id):
    from rollout.checks import audit_key_settings

    settings.SECURE_DEPLOYMENT, settings.AUDIT_HMAC_KEY = True, key
    errors = [item for item in audit_key_settings(None) if item.is_serious()]
    assert [item.id for item in errors] == [check_id]
    assert "secrets.token_urlsafe" in errors[0].hint


def test_start_up_stops_without_the_key_in_a_secure_deployment():
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    environment.update(SECURE_DEPLOYMENT="true", AUDIT_HMAC_KEY="", AUDIT_HMAC_KEY_FILE="")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "rollout.E601" in result.stderr and "secrets.token_urlsafe" in result.stderr


def test_a_proper_key_passes_the_check(settings):
    from rollout.checks import audit_key_settings

    settings.SECURE_DEPLOYMENT = True
    settings.AUDIT_CHECKPOINT_FILE = "/var/lib/rollout/audit-checkpoints.jsonl"
    assert audit_key_settings(None) == []


def test_the_key_is_read_from_a_file_and_old_keys_from_a_list(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    key_file = tmp_path / "audit-hmac-key"
    key_file.write_text("a-key-kept-in-a-file-0123456789abcdefghijkl\n")
    environment = dict(os.environ, AUDIT_HMAC_KEY_FILE=str(key_file))
    environment.pop("AUDIT_HMAC_KEY")
    environment["AUDIT_HMAC_OLD_KEYS"] = "2024:first-old-key,2025:second:old:key"
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config import settings as s; print(s.AUDIT_HMAC_KEY, s.AUDIT_HMAC_OLD_KEYS)",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == (
        "a-key-kept-in-a-file-0123456789abcdefghijkl "
        "{'2024': 'first-old-key', '2025': 'second:old:key'}"
    )
