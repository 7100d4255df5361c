"""Every form posts to a real address with its CSRF token, so it works without JavaScript."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.urls import resolve

from rollout.models import AuditEntry, ConfigChange
from tests.conftest import client_for, configured_environment, make_environment

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({**attrs, "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(attrs)


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


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
    stop = next(form for form in forms_of(page) if "emergency-control" in form.get("class", ""))
    token = next(i["value"] for i in stop["inputs"] if i.get("name") == "csrfmiddlewaretoken")

    confirmation = client.post(stop["action"], {"csrfmiddlewaretoken": token, "reason": "5xx"})
    assert confirmation.status_code == 200 and b"<html" in confirmation.content
    assert b"EMERGENCY STOP" in confirmation.content
    confirm = forms_of(confirmation.content.decode())[-1]
    data = {item["name"]: item.get("value", "") for item in confirm["inputs"] if "name" in item}

    done = client.post(confirm["action"], data, follow=True)
    assert done.redirect_chain == [(f"/environments/{production.public_id}/", 302)]
    assert b"EMERGENCY STOP queued" in done.content
    assert ConfigChange.objects.filter(kind="emergency_stop", requested_by=devops).exists()
    assert AuditEntry.objects.filter(actor=devops, action__contains="emergency").exists()
