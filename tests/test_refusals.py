"""Every route of the site, tried by a person without the right: 403 and one audit entry, or 405.

The routes are read from the URLconf itself, so a route added tomorrow is tried too; a route whose
URL this test cannot build fails the test instead of being skipped.
"""

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api import tokens
from metrics import alerts
from rollout.models import AuditEntry, BuildChange, Decision, PostMortem, WorkerDeployment
from rollout.services import preview as preview_suite
from tests.conftest import PASSWORD, client_for, make_environment
from tests.support.rollouts import b2b_request, make_production_at_b2a
from tests.test_decisions import observing

pytestmark = pytest.mark.django_db

# Log-in and log-out are for everyone, the admin has its own permissions, the Prometheus endpoint
# its bearer token, Slack's endpoint Slack's signature and the mapped person's permissions
# (tests/slack_actions/), and "Your settings", the header's language switcher (also before
# log-in) and one's own API tokens are every person's own (tests/test_times_for_people.py,
# tests/test_languages.py, tests/api/test_token_pages.py). The token API answers a session
# with 401: its refusals are tried with tokens (tests/api/test_api_refusals.py), and a path under it
# that names no route is a 404 for everyone (tests/api/test_api_schema.py).
NOT_TRIED = {
    "api_unknown_route",
    "login",
    "logout",
    "admin_login",
    "metrics:prometheus",
    "rollout:preferences",
    "rollout:language",
    "slack_actions:interactivity",
    "api_tokens:create",
    "api_tokens:revoke",
}
NOT_TRIED_PREFIXES = ("admin/", "static/", "api/v1/")

APPS = ("rollout", "monitoring", "metrics", "outbox", "api")


def routes():
    """(name, route) of every URL pattern, walking included URLconfs."""

    def walk(resolver, prefix, namespace):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = pattern.namespace or namespace
                yield from walk(pattern, route, f"{inner}:" if inner else namespace)
            elif isinstance(pattern, URLPattern):
                yield (f"{namespace}{pattern.name}" if pattern.name else route), route

    return list(walk(get_resolver(), "", ""))


@pytest.fixture
def world(edge, release_manager, tech_lead):
    """One of every object a URL can name."""
    production = make_production_at_b2a(edge)
    preview = make_environment(edge, name="preview")
    run = observing(production)
    decision = Decision.objects.create(
        phase_run=run,
        outcome=Decision.Outcome.NO_GO,
        recommendation=Decision.Outcome.NO_GO,
        evidence={},
        evidence_digest="0" * 64,
        created_by=tech_lead,
    )
    percent_request = b2b_request(production, release_manager)
    preview_run = preview_suite.create_run(
        environment=preview, build="b1", started_by=release_manager
    )
    alerts.policy_for(production.service)
    api_token = tokens.issue_personal(person=release_manager, name="laptop", days=30).token
    deployed = WorkerDeployment.objects.create(
        environment=production,
        deployment_id="d-1",
        versions=[{"version_id": "v1", "percentage": 100}],
    )
    build_change = BuildChange.objects.create(
        phase_run=run, after=deployed, changed_at=run.in_effect_at
    )
    return {
        "api_token": api_token,
        "build_change": build_change,
        "production": production,
        "preview": preview,
        "rollout": run.rollout,
        "phase_run": run,
        "check_in": run.check_ins.first(),
        "decision": decision,
        "post_mortem": PostMortem.objects.create(decision=decision, timeline="t"),
        "percent_request": percent_request,
        "preview_run": preview_run,
        "service": production.service,
    }


# The object a ``<uuid:public_id>`` names, by the path segment before it.
OBJECT_BY_SEGMENT = {
    "environments": "production",
    "metrics": "production",
    "requests": "percent_request",
    "preview-runs": "preview_run",
    "rollouts": "rollout",
    "phases": "phase_run",
    "check-ins": "check_in",
    "decisions": "decision",
    "post-mortems": "post_mortem",
    "api-tokens": "api_token",
    "build-changes": "build_change",
}


def url_kwargs(name, route, world) -> dict:
    """Real arguments for a route's URL, or a KeyError naming what is missing."""
    kwargs = {}
    for match in re.finditer(r"<(?:(\w+):)?(\w+)>", route):
        argument = match.group(2)
        if argument == "public_id":
            segment = route[: match.start()].rstrip("/").split("/")[-1]
            key = OBJECT_BY_SEGMENT[segment]
            if key == "production" and "preview" in name:
                key = "preview"
            kwargs[argument] = world[key].public_id
        elif argument == "service":
            kwargs[argument] = world["service"].name
        elif argument == "kind":
            kwargs[argument] = "team_notified"
        elif argument == "fmt":
            kwargs[argument] = "csv"
        else:
            raise KeyError(argument)
    return kwargs


def row_counts() -> dict:
    return {
        model._meta.label: model.objects.count()
        for app in APPS
        for model in apps.get_app_config(app).get_models()
        if model is not AuditEntry
    }


def tried_routes():
    return [
        (name, route)
        for name, route in routes()
        if name not in NOT_TRIED and not route.startswith(NOT_TRIED_PREFIXES)
    ]


@pytest.mark.parametrize("person", ["viewer", "outsider"])
def test_every_route_refuses_and_audits_a_post_without_the_right(request, world, person):
    user = request.getfixturevalue(person)
    client = client_for(user)
    problems = []
    tried = tried_routes()
    for name, route in tried:
        try:
            url = reverse(name, kwargs=url_kwargs(name, route, world))
        except KeyError as missing:
            problems.append(f"{name}: cannot build its URL ({route}), no value for {missing}")
            continue
        counts = row_counts()
        last_entry = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = client.post(url, {})
        new = list(AuditEntry.objects.filter(id__gt=last_entry))
        if response.status_code == 405:
            if new:
                problems.append(f"{name}: read-only (405) but wrote {[e.action for e in new]}")
        elif response.status_code != 403:
            problems.append(f"{name}: {response.status_code} instead of 403 or 405")
        elif [(e.action, e.actor_id, e.outcome) for e in new] != [
            ("permission.denied", user.pk, "refused")
        ]:
            problems.append(f"{name}: 403 with audit entries {[e.action for e in new]}")
        elif url not in new[0].detail:
            problems.append(f"{name}: the entry does not name the route: {new[0].detail!r}")
        if row_counts() != counts:
            problems.append(f"{name}: the database changed")
    assert not problems, "\n".join(problems)
    # The walk found the site's routes, not an empty list.
    assert {"rollout:connect", "rollout:post_mortem", "metrics:save_alert_rules"} <= {
        name for name, _ in tried
    }


def test_a_refusal_names_the_environment_it_was_about(world, viewer):
    production = world["production"]
    response = client_for(viewer).post(reverse("rollout:rollback", args=[production.public_id]))
    assert response.status_code == 403
    entry = AuditEntry.objects.get(action="permission.denied")
    assert entry.environment == production
    assert "needs rollout.rollback" in entry.detail


def test_a_refused_read_is_not_audited(world, outsider):
    production = world["production"]
    response = client_for(outsider).get(reverse("rollout:environment", args=[production.public_id]))
    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action="permission.denied").exists()


def signer_without_a_role(django_user_model):
    """Holds the permission to sign (given directly) but neither signing role."""
    from django.contrib.auth.models import Permission

    person = django_user_model.objects.create_user(username="sam", password=PASSWORD)
    person.user_permissions.add(Permission.objects.get(codename="sign_decision"))
    return person


def test_withdrawing_without_a_signing_role_is_audited_once(world, django_user_model):
    person = signer_without_a_role(django_user_model)
    url = reverse("rollout:withdraw", args=[world["decision"].public_id])
    response = client_for(person).post(url, {"note": "wrong window"})
    assert response.status_code == 403
    new = list(AuditEntry.objects.filter(actor=person).order_by("id"))
    assert [(e.action, e.actor) for e in new] == [("permission.denied", person)]
    assert new[0].environment == world["production"] and "tech lead or DevOps" in new[0].detail
    assert Decision.objects.get(pk=world["decision"].pk).state == Decision.State.OPEN


def test_signing_in_a_role_not_held_is_audited_once(world, django_user_model):
    person = signer_without_a_role(django_user_model)
    run = world["phase_run"]
    Decision.objects.filter(pk=world["decision"].pk).update(state=Decision.State.WITHDRAWN)
    response = client_for(person).post(
        reverse("rollout:sign", args=[run.public_id]),
        {"outcome": "go", "role": "tech_lead", "evidence_digest": "0" * 64},
    )
    assert response.status_code == 403
    new = list(AuditEntry.objects.filter(actor=person).order_by("id"))
    assert [(e.action, e.actor) for e in new] == [("permission.denied", person)]
    assert "needs the role Tech lead" in new[0].detail
    assert new[0].environment == world["production"]


def test_start_up_stops_without_the_refusal_middleware(settings):
    from rollout.checks import refusals_are_audited

    assert refusals_are_audited(None) == []
    settings.MIDDLEWARE = [
        name for name in settings.MIDDLEWARE if name != "rollout.permissions.RefusalAuditMiddleware"
    ]
    assert [error.id for error in refusals_are_audited(None)] == ["rollout.E004"]
