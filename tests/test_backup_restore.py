"""The backup procedure of docs/operations.md, run for real: pg_dump in the custom format,
pg_restore into a fresh database, then ``manage.py verify_audit`` against the restored copy
finds the whole hash chain intact, and the restored audit table still refuses UPDATE."""

import os
import shutil
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from rollout.models import AuditEntry
from tests.conftest import ROOT, configured_environment, skip_unless_installed

pytestmark = pytest.mark.django_db(transaction=True)


def database_url(name: str) -> str:
    database = settings.DATABASES["default"]
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{name}"


@pytest.fixture
def restored_name():
    name = f"rollout_restore_test_{os.getpid()}"
    admin = database_url("postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_restored_backup_passes_verify_audit(edge, tmp_path, restored_name):
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        skip_unless_installed("pg_dump / pg_restore")
    configured_environment(edge)
    entries = AuditEntry.objects.count()
    assert entries >= 1

    dump = tmp_path / "rollout.dump"
    source = database_url(settings.DATABASES["default"]["NAME"])
    target = database_url(restored_name)
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", source], check=True, timeout=120
    )
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={target}", str(dump)], check=True, timeout=120
    )
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=ROOT,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=target),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"audit chain intact: {entries} entries verified" in verify.stdout

    with psycopg.connect(target) as connection, pytest.raises(psycopg.errors.RaiseException):
        connection.execute("UPDATE rollout_auditentry SET reason = 'rewritten'")


def test_a_missing_tool_fails_under_ci_and_is_skipped_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="should have installed it"):
        skip_unless_installed("pg_dump")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        skip_unless_installed("pg_dump")
