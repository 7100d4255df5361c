"""Every form posts to a real address with its CSRF token, so it works without JavaScript."""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.urls import resolve

from rollout.models import AuditEntry, ConfigChange
from tests.conftest import client_for, configured_environment, make_environment
from tests.support.forms import confirm, form_with, forms_of
from tests.support.rollouts import b2b_request

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_every_form_in_the_templates_names_its_method_and_action():
    for template in TEMPLATES.rglob("*.html"):
        for tag in re.findall(r"<form\b[^>]*>", template.read_text(), flags=re.S):
            assert re.search(r'method="(post|get)"', tag), f"{template.name}: {tag}"
            assert re.search(r'action="[^"]+"', tag), f"{template.name}: {tag}"


@pytest.mark.parametrize(
    "person", ["viewer", "release_manager", "tech_lead", "devops", "admin_user"]
)
def test_every_rendered_form_posts_to_a_real_address(edge, request, person):
    production = configured_environment(edge)
    preview = make_environment(edge, name="preview")
    user = request.getfixturevalue(person)
    client = client_for(user)
    pages = [
        "/",
        f"/environments/{production.public_id}/",
        f"/environments/{preview.public_id}/",
        f"/environments/{production.public_id}/preflight/",
        f"/environments/{preview.public_id}/preview-suite/",
        "/audit/",
        "/rollouts/",
    ]
    seen = 0
    for page in pages:
        response = client.get(page)
        if response.status_code != 200:
            continue
        for form in forms_of(response.content.decode()):
            seen += 1
            method = form.get("method", "").lower()
            assert method in ("post", "get"), (page, form)
            assert form.get("action"), (page, form)
            resolve(urlparse(form["action"]).path)
            if method == "post":
                names = [item.get("name") for item in form["inputs"]]
                assert "csrfmiddlewaretoken" in names, (page, form)
    assert seen


def test_the_emergency_stop_without_javascript(edge, devops):
    production = configured_environment(edge)
    client = client_for(devops, enforce_csrf_checks=True)
    page = client.get(f"/environments/{production.public_id}/").content.decode()
    stop, data = form_with(page, "emergency-control")

    confirmation = client.post(stop["action"], {**data, "reason": "5xx"})
    assert b"EMERGENCY STOP" in confirmation.content
    done = confirm(client, confirmation)
    assert done.redirect_chain == [(f"/environments/{production.public_id}/", 302)]
    assert b"EMERGENCY STOP queued" in done.content
    assert ConfigChange.objects.filter(kind="emergency_stop", requested_by=devops).exists()
    assert AuditEntry.objects.filter(actor=devops, action__contains="emergency").exists()


def test_an_approval_is_confirmed_without_javascript(edge, release_manager, tech_lead):
    production = configured_environment(edge)
    pending = b2b_request(production, release_manager, base_version=1)
    client = client_for(tech_lead, enforce_csrf_checks=True)
    page = client.get(f"/environments/{production.public_id}/").content.decode()
    approve, data = form_with(page, "/approve/")

    confirmation = client.post(approve["action"], data)
    assert "Approve production: 10% → 25%, tag B2b" in confirmation.content.decode()
    pending.refresh_from_db()
    assert pending.state == "pending" and not ConfigChange.objects.filter(version=2).exists()

    done = confirm(client, confirmation)
    assert done.redirect_chain == [(f"/environments/{production.public_id}/", 302)]
    assert b"Approved: 25%, tag B2b queued" in done.content
    pending.refresh_from_db()
    assert pending.state == "approved" and pending.change.approved_by == tech_lead
