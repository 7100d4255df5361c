"""Checkpoints of the audit chain's head outside the database: an append-only local file and a
real S3 server (moto) standing in for R2; written on every emergency stop and decision by a real
Celery worker; never overwritten; a failure recorded in the audit trail."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from config.celery import app
from rollout.models import AuditEntry
from rollout.services import audit, controls
from rollout.services.audit_checkpoints import FAILED_ACTION, object_key, write_checkpoint
from tests.conftest import configured_environment, wait_for
from tests.metrics.conftest import s3, s3_server  # noqa: F401 - fixtures
from tests.support.rollouts import make_production_at_b2a
from tests.test_decisions import observing, sign


def lines(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def new_entry(detail="x"):
    return audit.record(action="config.written", system="kv-writer", detail=detail)


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    path = tmp_path / "audit-checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_FILE = str(path)
    return path


@pytest.fixture
def bucket(s3, settings):  # noqa: F811 - the fixture imported above
    settings.AUDIT_CHECKPOINT_BUCKET = s3.bucket
    settings.AUDIT_CHECKPOINT_PREFIX = "audit/"
    return s3


def objects(client):
    listing = client.list_objects_v2(Bucket=client.bucket, Prefix="audit/")
    return {item["Key"]: item for item in listing.get("Contents", [])}


def body(client, key):
    return json.loads(client.get_object(Bucket=client.bucket, Key=key)["Body"].read())


# --- the local file ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_file_gets_one_line_per_new_head_and_nothing_for_an_unchanged_one(checkpoint_file):
    first = new_entry()
    assert write_checkpoint() == {"file": "written"}
    assert write_checkpoint() == {"file": "unchanged"}
    second = new_entry()
    assert write_checkpoint() == {"file": "written"}
    recorded = lines(checkpoint_file)
    assert [(item["entry_id"], item["entry_hash"]) for item in recorded] == [
        (first.pk, first.entry_hash),
        (second.pk, second.entry_hash),
    ]
    assert recorded[1]["key_id"] == second.key_id
    assert checkpoint_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_the_file_is_appended_to_never_rewritten(checkpoint_file):
    checkpoint_file.write_text('{"entry_id": 1, "entry_hash": "kept", "checkpointed_at": "t"}\n')
    entry = new_entry()
    write_checkpoint()
    assert checkpoint_file.read_text().splitlines()[0].endswith('"kept", "checkpointed_at": "t"}')
    assert lines(checkpoint_file)[-1]["entry_id"] == entry.pk


@pytest.mark.django_db
def test_an_unwritable_file_is_recorded_once_in_the_audit_trail(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "no-such-directory" / "checkpoints.jsonl")
    entry = new_entry()
    assert write_checkpoint()["file"].startswith("failed:")
    failure = AuditEntry.objects.get(action=FAILED_ACTION)
    assert failure.outcome == AuditEntry.Outcome.FAILED
    assert f"checkpoint of entry #{entry.pk} not written: file:" in failure.detail
    write_checkpoint()  # still failing, nothing new to say
    assert AuditEntry.objects.filter(action=FAILED_ACTION).count() == 1


# --- the S3 / R2 bucket ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bucket_gets_a_new_object_per_head_and_none_for_an_unchanged_one(bucket):
    first = new_entry()
    assert write_checkpoint() == {"bucket": "written"}
    stored = objects(bucket)[object_key(first.pk)]
    assert write_checkpoint() == {"bucket": "unchanged"}
    again = objects(bucket)[object_key(first.pk)]
    assert (again["ETag"], again["LastModified"]) == (stored["ETag"], stored["LastModified"])
    second = new_entry()
    write_checkpoint()
    assert sorted(objects(bucket)) == [object_key(first.pk), object_key(second.pk)]
    assert body(bucket, object_key(second.pk))["entry_hash"] == second.entry_hash


@pytest.mark.django_db
def test_a_rewritten_head_does_not_overwrite_its_checkpoint_and_is_recorded(bucket):
    entry = new_entry()
    write_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE rollout_auditentry DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE rollout_auditentry SET entry_hash = %s WHERE id = %s", ["f" * 64, entry.pk]
        )
        cursor.execute("ALTER TABLE rollout_auditentry ENABLE TRIGGER USER")
    assert write_checkpoint()["bucket"].startswith("failed:")
    assert body(bucket, object_key(entry.pk))["entry_hash"] == entry.entry_hash
    failure = AuditEntry.objects.get(action=FAILED_ACTION)
    assert "the chain was rewritten" in failure.detail


@pytest.mark.django_db
def test_a_missing_bucket_is_recorded_in_the_audit_trail(bucket, settings):
    settings.AUDIT_CHECKPOINT_BUCKET = "no-such-bucket"
    new_entry()
    write_checkpoint()
    assert "NoSuchBucket" in AuditEntry.objects.get(action=FAILED_ACTION).detail


@pytest.mark.django_db
def test_verify_audit_reports_deleted_newest_entries_against_the_bucket(bucket):
    kept, deleted = new_entry(), new_entry()
    write_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE rollout_auditentry DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM rollout_auditentry WHERE id = %s", [deleted.pk])
        cursor.execute("ALTER TABLE rollout_auditentry ENABLE TRIGGER USER")
    with pytest.raises(
        CommandError,
        match=f"entries after #{kept.pk} were deleted: #{deleted.pk} to #{deleted.pk}",
    ):
        call_command("verify_audit")


# --- on every emergency stop and decision ------------------------------------------------------


@pytest.mark.django_db
def test_the_checkpoint_is_queued_behind_the_emergency_stops_write(
    edge, devops, broker_url, django_capture_on_commit_callbacks
):
    environment = configured_environment(edge)
    with django_capture_on_commit_callbacks(execute=True):
        controls.emergency_stop(environment=environment, reason="5xx spike", actor=devops)
    taken = []
    with app.connection_for_read() as broker:
        channel = broker.default_channel
        while (message := channel.basic_get("celery", no_ack=True)) is not None:
            taken.append((message.headers["task"], message.properties.get("priority")))
    assert taken == [
        ("rollout.tasks.apply_desired_config", 0),
        ("rollout.tasks.checkpoint_audit", 5),
    ]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_emergency_stop_is_checkpointed_by_the_worker(edge, devops, start_worker, tmp_path):
    path = tmp_path / "audit-checkpoints.jsonl"
    start_worker(env={"AUDIT_CHECKPOINT_FILE": str(path)})
    environment = configured_environment(edge)
    controls.emergency_stop(environment=environment, reason="5xx spike", actor=devops)
    stop = AuditEntry.objects.get(action="config.emergency_stop")
    wait_for(
        lambda: any(item["entry_id"] >= stop.pk for item in lines(path)),
        timeout=20,
        message="a checkpoint of the emergency stop",
    )
    checkpoint = lines(path)[-1]
    head = AuditEntry.objects.get(pk=checkpoint["entry_id"])
    assert checkpoint["entry_hash"] == head.entry_hash


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_decision_taking_effect_is_checkpointed_by_the_worker(
    edge, tech_lead, devops, start_worker, tmp_path
):
    path = tmp_path / "audit-checkpoints.jsonl"
    start_worker(env={"AUDIT_CHECKPOINT_FILE": str(path)})
    run = observing(make_production_at_b2a(edge), healthy=False)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    assert lines(path) == []  # one signature: nothing took effect yet
    sign(run, devops, "devops", outcome="no_go")
    effective = AuditEntry.objects.get(action="decision.effective")
    wait_for(
        lambda: any(item["entry_id"] >= effective.pk for item in lines(path)),
        timeout=20,
        message="a checkpoint of the decision",
    )
