"""Structured logs (config/log_format.py): one JSON object a line on stderr with time, level,
logger, message, the request id of the request being handled (or the Celery task's name and id)
and extra fields; LOG_FORMAT chooses json or text; Celery's worker keeps the same format."""

import json
import logging
import os
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import path

from monitoring.models import HealthCheck
from monitoring.tasks import observe_environment
from tests.conftest import ROOT, make_environment, wait_for
from tests.support.logs import json_log_lines

log = logging.getLogger("rollout.test_logging")


def logs_inside(request):
    from django.http import HttpResponse

    log.info("inside the view", extra={"environment": "production", "version": 7})
    return HttpResponse("ok")


urlpatterns = [path("logs-inside/", logs_inside)]


def test_the_full_stack_logs_json_by_default(settings):
    # The suite runs on PostgreSQL, as the full stack does; the demo (SQLite) gets text.
    assert settings.LOG_FORMAT == "json"
    handler = settings.LOGGING["handlers"]["console"]
    assert handler["formatter"] == "json" and handler["filters"] == ["context"]
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False


@pytest.mark.urls(__name__)
def test_a_request_logs_json_lines_with_its_request_id():
    with json_log_lines() as lines:
        response = Client().get("/logs-inside/", HTTP_X_REQUEST_ID="req-7f3a")
    assert response.status_code == 200
    (line,) = [line for line in lines() if line["logger"] == "rollout.test_logging"]
    assert line["message"] == "inside the view"
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-7f3a" == response["X-Request-ID"]
    assert line["environment"] == "production" and line["version"] == 7
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert list(line)[:4] == ["time", "level", "logger", "message"]


def test_djangos_own_response_lines_carry_the_request_id_too(db):
    with json_log_lines() as lines:
        response = Client().get("/no-such-page/")
    assert response.status_code == 404
    (line,) = [line for line in lines() if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["status_code"] == 404 and "request" not in line


def test_a_traceback_stays_inside_its_one_line():
    with json_log_lines() as lines:
        try:
            raise RuntimeError("first\nsecond")
        except RuntimeError:
            log.exception("it failed")
    assert len(lines.raw().splitlines()) == 1
    (line,) = lines()
    assert "RuntimeError: first\nsecond" in line["exc_info"]
    assert "request_id" not in line  # outside a request


def run_with_log_format(value, database_url=None):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", LOG_FORMAT=value)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import logging; logging.getLogger('rollout.x').warning('hello', extra={'n': 1})",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_log_format_chooses_json_or_text_and_refuses_anything_else():
    as_json = run_with_log_format("json")
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert record["message"] == "hello" and record["n"] == 1 and record["logger"] == "rollout.x"

    as_text = run_with_log_format("text")
    assert as_text.returncode == 0, as_text.stderr
    assert as_text.stderr.strip().splitlines()[-1].endswith("WARNING rollout.x hello")

    wrong = run_with_log_format("yaml")
    assert wrong.returncode != 0 and "LOG_FORMAT must be json or text" in wrong.stderr


def test_the_embedded_demo_logs_text_by_default(tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", ROLLOUT_VAR_DIR=str(tmp_path))
    env.pop("LOG_FORMAT", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.LOG_FORMAT)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "text", result.stderr


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_celery_worker_logs_json_lines_with_the_task(edge, start_worker):
    environment = make_environment(edge)  # no config in KV: the check fails and says so
    worker = start_worker()
    result = observe_environment.delay(environment.pk)
    wait_for(lambda: HealthCheck.objects.filter(environment=environment).exists(), timeout=20)
    wait_for(lambda: f"{result.id}] succeeded" in worker.output(), timeout=10)
    records = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    # Celery's own lines and ours, all in the one format (not Celery's "[time: LEVEL/Process]").
    assert any(r["logger"] == "celery.apps.worker" and "ready." in r["message"] for r in records)
    assert not [line for line in worker.output().splitlines() if "INFO/MainProcess]" in line]
    ours = [r for r in records if r["logger"] == "monitoring.probes"]
    assert ours and ours[0]["level"] == "INFO" and "health check of" in ours[0]["message"]
    assert ours[0]["task_name"] == "monitoring.tasks.observe_environment"
    assert ours[0]["task_id"] == result.id
