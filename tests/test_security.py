import logging
import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from rollout.models import AuditEntry
from tests.conftest import PASSWORD, ROOT, make_environment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_pages_carry_the_security_headers(viewer):
    client = Client()
    client.login(username=viewer.username, password=PASSWORD)
    response = client.get(reverse("rollout:overview"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert len(response["X-Request-ID"]) == 32


def test_the_pages_have_no_inline_script(viewer, edge):
    make_environment(edge)
    client = Client()
    client.login(username=viewer.username, password=PASSWORD)
    for name in ("rollout:overview", "rollout:audit"):
        html = client.get(reverse(name)).content.decode()
        assert "<script>" not in html and " onclick=" not in html


GOOD_KEY = "x7#Qp!2vL9zR@4mN8sT$1wY6uB0eK3jH5gF^cD&aZ*oI(lP)qW-rE=tU+yO[iA]"
WEAK_KEYS = {
    "unset": None,
    "the demo's": "insecure-embedded-mode-key-change-me-" + "x" * 20,
    "49 characters": "abcdefghij" * 4 + "123456789",
    "four different characters": "abcd" * 13,
}


def production_env(secret_key=GOOD_KEY):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECURE_DEPLOYMENT="true",
        DEBUG="false",
        DATABASE_URL="sqlite:///" + str(ROOT / "var" / "check-deploy.sqlite3"),
        ALLOWED_HOSTS="rollout.example.com",
    )
    env.pop("SECRET_KEY")
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    return env


def run(command, env, timeout=60):
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_check_deploy_is_clean_under_production_settings():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("weak", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_check_deploy_refuses_a_weak_secret_key(weak):
    result = run([sys.executable, "manage.py", "check", "--deploy"], production_env(weak))
    assert result.returncode != 0
    assert "ERRORS:" in result.stderr and "(rollout.E600)" in result.stderr
    assert 'python -c "import secrets; print(secrets.token_urlsafe(50))"' in result.stderr


def test_the_demo_key_is_fine_without_a_secure_deployment():
    env = production_env(None)
    env["SECURE_DEPLOYMENT"] = "false"
    result = run([sys.executable, "manage.py", "check"], env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("weak", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_the_web_process_refuses_to_start_with_a_weak_key(weak):
    result = run([sys.executable, "-c", "import config.wsgi"], production_env(weak))
    assert result.returncode != 0
    assert "The web process refuses to start" in result.stderr
    assert "(rollout.E600)" in result.stderr and "token_urlsafe(50)" in result.stderr


def test_the_web_process_starts_with_a_good_key():
    result = run([sys.executable, "-c", "import config.wsgi; print('loaded')"], production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"


def test_gunicorn_stops_instead_of_serving_with_a_weak_key():
    """Its worker fails to boot, and gunicorn halts rather than starting new workers."""
    result = run(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "config.wsgi:application"],
        production_env(WEAK_KEYS["the demo's"]),
        timeout=120,
    )
    assert result.returncode == 3  # gunicorn's "worker failed to boot"
    assert "The web process refuses to start" in result.stderr
    assert "(rollout.E600)" in result.stderr


def test_the_celery_worker_refuses_to_start_with_a_weak_key():
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    result = run(command + ["--without-gossip", "--without-mingle"], production_env(None))
    assert result.returncode != 0
    assert "The Celery worker refuses to start" in result.stderr
    assert "(rollout.E600)" in result.stderr


def test_sessions_expire(settings):
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_secrets_are_never_rendered(edge, admin_user, settings):
    settings.CLOUDFLARE_API_TOKEN = "cf-secret-token-123456"
    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "https://hooks.slack.test/services/SECRET999"
    settings.EDGE_PROBE_HEADERS = {"X-Monitoring-Token": "monitor-secret-777"}
    environment = make_environment(edge)
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    pages = [
        reverse("rollout:overview"),
        reverse("rollout:environment", args=[environment.public_id]),
        reverse("rollout:audit"),
        f"/admin/rollout/environment/{environment.pk}/change/",
    ]
    client.post(reverse("rollout:connect", args=[environment.public_id]))
    for page in pages:
        html = client.get(page).content.decode()
        for secret in ("cf-secret-token-123456", "SECRET999", "monitor-secret-777"):
            assert secret not in html, f"{secret} shown on {page}"
    for entry in AuditEntry.objects.all():
        text = f"{entry.detail} {entry.before} {entry.after} {entry.reason}"
        assert "cf-secret-token" not in text and "SECRET999" not in text


def test_secrets_never_reach_the_log_lines(edge, admin_user, settings):
    """Actions that log while secrets are configured (a connect, failed health checks with a
    secret probe header, a 503 while the database is away, an error whose message holds a
    webhook URL) write JSON lines without any of them; a secret that slips into a message,
    an argument, an extra field or a traceback is replaced by "[redacted]"."""
    from django.db import OperationalError
    from django.test import RequestFactory

    from monitoring.observation import observe
    from rollout.middleware import DatabaseUnavailableMiddleware
    from tests.support.logs import json_log_lines

    token = "cf-secret-token-123456"
    webhook = "https://hooks.slack.test/services/SECRET999"
    probe_token = "monitor-secret-777"
    settings.CLOUDFLARE_API_TOKEN = token
    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = webhook
    settings.PAGERDUTY_ROUTING_KEY = "pd-routing-key-4242"
    settings.EDGE_PROBE_HEADERS = {"X-Monitoring-Token": probe_token}
    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/production": {"X-Other-Token": "per-env-secret-888"}
    }
    secrets = [token, "SECRET999", probe_token, "pd-routing-key-4242", "per-env-secret-888"]
    environment = make_environment(edge)
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    log = logging.getLogger("rollout.test_security")
    with json_log_lines() as lines:
        client.post(reverse("rollout:connect", args=[environment.public_id]))
        edge.knobs(health={"production": {"database": "connection timeout"}})
        observe(environment.pk)  # a failed check, logged
        middleware = DatabaseUnavailableMiddleware(lambda request: None)
        middleware.process_exception(
            RequestFactory().get("/"), OperationalError(f"password for token {token} refused")
        )
        try:
            raise RuntimeError(f"POST {webhook} answered 404")
        except RuntimeError:
            log.exception("posting to %s failed", webhook, extra={"headers": {"X-T": probe_token}})
    raw = lines.raw()
    for secret in secrets:
        assert secret not in raw, f"{secret} in the log"
    records = lines()
    assert any("health check of" in r["message"] for r in records)
    slipped = [r for r in records if r["logger"] == "rollout.test_security"][0]
    assert slipped["message"] == "posting to [redacted] failed"
    assert slipped["headers"] == {"X-T": "[redacted]"}
    assert "POST [redacted] answered 404" in slipped["exc_info"]
    (unavailable,) = [r for r in records if r["logger"] == "rollout.middleware"]
    assert "password for token [redacted] refused" in unavailable["message"]


def test_no_template_relies_on_an_inline_style():
    """The Content-Security-Policy allows styles from our own files only (``style-src 'self'``):
    a browser ignores a ``style`` attribute, so a page that relies on one breaks silently (the
    cohort panel's drawings made the environment page 622 px wide on a phone)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.html")
        if 'style="' in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
