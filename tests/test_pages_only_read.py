"""Opening a page changes nothing: no transition, no notification, no row anywhere. What time has
moved (a window that ended) is shown as derived on read until ``advance_rollouts`` records it."""

import pytest
from django.apps import apps
from django.urls import reverse

from rollout.models import PhaseRun, Rollout
from rollout.tasks import advance_rollouts
from tests.conftest import client_for
from tests.test_refusals import routes, url_kwargs, world  # noqa: F401  (world is a fixture)

pytestmark = pytest.mark.django_db

PEOPLE = ["viewer", "release_manager", "tech_lead", "devops", "admin_user", "outsider"]
NOT_TRIED = {"login", "logout", "admin_login", "metrics:prometheus", "api_unknown_route"}
# The token API answers a session with 401; its reads are tried with tokens (tests/api/), and a
# path under it that names no route is a 404 for everyone.
NOT_TRIED_PREFIXES = ("admin/", "static/", "api/v1/")
PROJECT_APPS = ("rollout", "monitoring", "metrics", "outbox", "api")


def every_row() -> dict:
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for config in apps.get_app_configs()
        if config.label in PROJECT_APPS
        for model in config.get_models()
    }


@pytest.mark.parametrize("person", PEOPLE)
def test_opening_any_page_changes_nothing(request, world, person):  # noqa: F811
    client = client_for(request.getfixturevalue(person))
    run = world["phase_run"]
    assert run.state == PhaseRun.State.OBSERVING and run.window_ends_at is not None
    before = every_row()
    opened = []
    for name, route in routes():
        if name in NOT_TRIED or route.startswith(NOT_TRIED_PREFIXES):
            continue
        url = reverse(name, kwargs=url_kwargs(name, route, world))
        response = client.get(url)
        assert response.status_code < 500, f"{name}: {response.status_code}"
        opened.append((name, response.status_code))
        changed = [label for label, rows in every_row().items() if before[label] != rows]
        assert not changed, f"GET {url} ({name}) changed {changed}"
    assert ("rollout:phase_run", 200 if person != "outsider" else 403) in opened


def test_a_window_that_ended_reads_decision_due_before_the_task_ran(world, viewer):  # noqa: F811
    run, rollout = world["phase_run"], world["rollout"]
    client = client_for(viewer)

    phase_page = client.get(reverse("rollout:phase_run", args=[run.public_id])).content.decode()
    rollout_page = client.get(reverse("rollout:rollout", args=[rollout.public_id])).content.decode()
    history = client.get(reverse("rollout:rollouts")).content.decode()
    overview = client.get(reverse("rollout:overview")).content.decode()
    environment = client.get(
        reverse("rollout:environment", args=[world["production"].public_id])
    ).content.decode()

    assert '<strong id="phase-state">decision due</strong>' in phase_page
    assert 'id="rollout-state">decision due</strong>' in rollout_page
    assert "state-decision_due" in history
    assert "the GO / NO-GO decision is due" in overview
    assert "The GO / NO-GO decision is due." in environment
    run.refresh_from_db()
    assert run.state == PhaseRun.State.OBSERVING  # only read

    advance_rollouts()
    run.refresh_from_db()
    rollout.refresh_from_db()
    assert (run.state, rollout.state) == (PhaseRun.State.DECISION_DUE, Rollout.State.DECISION_DUE)


def test_a_running_window_reads_as_running(world, viewer):  # noqa: F811
    run = world["phase_run"]
    PhaseRun.objects.filter(pk=run.pk).update(window_ends_at=run.window_ends_at.replace(year=2999))
    page = client_for(viewer).get(reverse("rollout:phase_run", args=[run.public_id]))
    assert '<strong id="phase-state">Observing</strong>' in page.content.decode()
