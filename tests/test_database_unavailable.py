"""The answer while the database is away (rollout/middleware.py), through the whole middleware
stack: views that raise the errors a lost PostgreSQL connection raises answer 503 with a short
page, or a fragment for HTMX, with Retry-After, one log line and no traceback. Any other error
still takes the ordinary 500 path. The real outage (a PostgreSQL restart under gunicorn) is in
tests/test_faults_database.py."""

import logging

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import path

from config import log_format


def refused(request):
    raise OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?"
    )


def closed(request):
    raise InterfaceError("connection already closed")


def broken(request):
    raise ValueError("a bug, not an outage")


urlpatterns = [
    path("refused/", refused),
    path("closed/", closed),
    path("broken/", broken),
]

pytestmark = pytest.mark.urls(__name__)


def test_a_page_answers_503_with_a_short_page_that_retries(caplog):
    with caplog.at_level(logging.INFO):
        response = Client().get("/refused/", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Request-ID"] == "req-42"
    html = response.content.decode()
    assert "Database unreachable, retrying" in html
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "Traceback" not in html and "5432" not in html
    # Logged once, as a warning with the reason, without a traceback; nothing from
    # django.request (whose "Internal Server Error" line carries one).
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.name == "rollout.middleware" and record.exc_info is None
    assert "GET /refused/" in record.getMessage() and "Connection refused" in record.getMessage()
    assert "Is the server running" not in record.getMessage()  # the first line only
    assert record.status_code == 503 and record.error == "OperationalError"


def test_an_htmx_poll_gets_a_fragment_swapped_into_the_poller(caplog):
    response = Client().get("/refused/", HTTP_HX_REQUEST="true")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["HX-Reswap"] == "innerHTML"
    html = response.content.decode().strip()
    assert "Database unreachable, retrying" in html
    assert "<html" not in html and "refresh" not in html
    assert len(html) < 400


def test_an_htmx_action_is_told_it_may_not_have_been_recorded():
    response = Client(enforce_csrf_checks=False).post("/refused/", HTTP_HX_REQUEST="true")
    assert response.status_code == 503
    assert "may not have been recorded" in response.content.decode()
    assert "retrying" not in response.content.decode()


def test_a_history_restore_gets_the_whole_page():
    response = Client().get(
        "/refused/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert response.status_code == 503
    assert "<html" in response.content.decode()


def test_a_closed_connection_counts_too():
    assert Client().get("/closed/").status_code == 503


def test_no_debug_page_either(settings):
    settings.DEBUG = True
    response = Client().get("/refused/")
    assert response.status_code == 503
    assert "Traceback" not in response.content.decode()


def test_other_errors_still_take_the_500_path(caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        response = client.get("/broken/")
    assert response.status_code == 500
    assert any(r.name == "django.request" and r.exc_info for r in caplog.records)


def test_the_request_id_is_only_set_while_the_request_is_handled():
    Client().get("/refused/", HTTP_X_REQUEST_ID="req-43")
    assert log_format.current_request_id.get() == ""
