"""How a POST answers with htmx and without it (rollout/responses.py)."""

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

from rollout.responses import fragment_or_page, redirect_after_post

pytestmark = pytest.mark.django_db


def a_post(*, htmx: bool, user=None):
    headers = {"HX-Request": "true"} if htmx else {}
    request = RequestFactory().post("/somewhere/", headers=headers)
    request.htmx = HtmxDetails(request)
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    if user is not None:
        request.user = user
    return request


def test_an_htmx_post_is_told_to_navigate_without_a_page_to_swap_in():
    response = redirect_after_post(a_post(htmx=True), "/environments/x/")
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/environments/x/"
    assert response.content == b"" and "Location" not in response


def test_a_plain_post_is_redirected():
    response = redirect_after_post(a_post(htmx=False), "/environments/x/")
    assert response.status_code == 302
    assert response["Location"] == "/environments/x/"
    assert "HX-Redirect" not in response


def refused_connection_check(*, htmx: bool, user):
    """The connection check's fragment, answered with 409 to a POST from ``/back/``."""
    context = {"check": {"steps": [("KV", True, "read")]}}
    request = a_post(htmx=htmx, user=user)
    return fragment_or_page(
        request, "rollout/_connection_result.html", context, page="/back/", status=409
    )


def test_htmx_gets_the_fragment_alone(devops):
    response = refused_connection_check(htmx=True, user=devops)
    assert response.status_code == 409
    assert b"KV: " in response.content and b"<html" not in response.content


def test_without_htmx_a_refusal_is_a_whole_page_around_the_fragment(devops):
    response = refused_connection_check(htmx=False, user=devops)
    assert response.status_code == 409
    assert b"<html" in response.content and b"KV: " in response.content
    assert b'href="/back/"' in response.content


def test_without_htmx_a_success_goes_back_to_the_page_with_its_message(devops):
    request = a_post(htmx=False, user=devops)
    response = fragment_or_page(
        request, "rollout/_connection_result.html", {"success": "Done."}, page="/back/"
    )
    assert response.status_code == 302 and response["Location"] == "/back/"
    assert [str(message) for message in request._messages] == ["Done."]
