import uuid

import pytest
from django.test import Client
from django.urls import reverse

from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from tests.conftest import NAMESPACES, client_for, configured_environment, make_environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_unconnected(edge):
    """Production as an administrator created it: not yet connected, nothing desired."""
    return make_environment(edge, connected=False)


def connect_url(environment):
    return reverse("rollout:connect", args=[environment.public_id])


def initial_url(environment):
    return reverse("rollout:write_initial", args=[environment.public_id])


# --- reading ---------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in(production_unconnected):
    response = Client().get(reverse("rollout:overview"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_person_without_a_role_sees_nothing(production_unconnected, outsider):
    assert client_for(outsider).get(reverse("rollout:overview")).status_code == 403
    url = reverse("rollout:environment", args=[production_unconnected.public_id])
    assert client_for(outsider).get(url).status_code == 403


def test_a_viewer_sees_the_overview_and_its_live_fragment(production_unconnected, viewer):
    client = client_for(viewer)
    page = client.get(reverse("rollout:overview"))
    assert page.status_code == 200
    assert b"pix-immo-api / production" in page.content and b"<html" in page.content
    fragment = client.get(reverse("rollout:overview"), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content and b"Not connected yet" in fragment.content


def test_an_unknown_environment_is_404(viewer):
    url = reverse("rollout:environment", args=[uuid.uuid4()])
    assert client_for(viewer).get(url).status_code == 404


def test_the_environment_page_hides_setup_from_viewers(production_unconnected, viewer, admin_user):
    url = reverse("rollout:environment", args=[production_unconnected.public_id])
    assert b"Check connection" not in client_for(viewer).get(url).content
    assert b"Check connection" in client_for(admin_user).get(url).content


# --- connecting -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_connect_takes_only_post(production_unconnected, admin_user, method):
    response = getattr(client_for(admin_user), method)(connect_url(production_unconnected))
    assert response.status_code == 405


@pytest.mark.parametrize("person", ["viewer", "release_manager", "tech_lead", "devops"])
def test_only_admins_connect(production_unconnected, request, person):
    user = request.getfixturevalue(person)
    assert client_for(user).post(connect_url(production_unconnected)).status_code == 403
    assert client_for(user).post(initial_url(production_unconnected), {}).status_code == 403
    refusals = AuditEntry.objects.values_list("action", "actor", "outcome")
    assert list(refusals) == [("permission.denied", user.pk, "refused")] * 2
    production_unconnected.refresh_from_db()
    assert production_unconnected.connected_at is None


def test_connect_without_a_csrf_token_is_refused(production_unconnected, admin_user):
    client = client_for(admin_user, enforce_csrf_checks=True)
    assert client.post(connect_url(production_unconnected)).status_code == 403


def test_a_missing_key_offers_the_initial_value(edge, production_unconnected, admin_user):
    response = client_for(admin_user).post(connect_url(production_unconnected))
    assert response.status_code == 200
    assert b"does not exist yet" in response.content and b"Write initial value" in response.content
    production_unconnected.refresh_from_db()
    assert production_unconnected.connected_at is not None
    entry = AuditEntry.objects.get(action="environment.connection_checked")
    assert entry.actor == admin_user and entry.outcome == "ok"


def test_a_valid_existing_value_is_adopted(edge, production_unconnected, admin_user):
    edge.put_external(
        NAMESPACES["production"],
        '{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":false,"last_updated":"x"}',
    )
    response = client_for(admin_user).post(connect_url(production_unconnected))
    assert b"already holds a valid config" in response.content
    desired = DesiredConfig.objects.get(environment=production_unconnected)
    assert (desired.version, desired.canary_percent, desired.canary_tag) == (1, 10, "B2a")
    assert not ConfigChange.objects.exists(), "adopting writes nothing"


def test_a_bad_token_is_named(edge, production_unconnected, admin_user, settings):
    settings.CLOUDFLARE_API_TOKEN = "not-the-token"
    response = client_for(admin_user).post(connect_url(production_unconnected))
    assert b"API token" in response.content and b"Authentication error" in response.content
    production_unconnected.refresh_from_db()
    assert (
        production_unconnected.connected_at is None
        and "API token" in production_unconnected.connection_error
    )
    assert AuditEntry.objects.get().outcome == "failed"


def test_a_missing_namespace_is_named(edge, production_unconnected, admin_user):
    production_unconnected.kv_namespace_id = "no-such-namespace"
    production_unconnected.save()
    response = client_for(admin_user).post(connect_url(production_unconnected))
    assert b"namespace no-such-namespace not found" in response.content


def test_an_unreachable_api_is_named(production_unconnected, admin_user, settings):
    settings.CLOUDFLARE_API_BASE_URL = "http://127.0.0.1:9/client/v4"
    response = client_for(admin_user).post(connect_url(production_unconnected))
    assert response.status_code == 200 and b"unreachable" in response.content


# --- the initial value ------------------------------------------------------------------------


@pytest.fixture
def connected(production_unconnected):
    from django.utils import timezone

    production_unconnected.connected_at = timezone.now()
    production_unconnected.save()
    return production_unconnected


@pytest.mark.parametrize(
    "data, message",
    [
        *(
            ({"canary_percent": percent}, b"whole number from 0 to 100")
            for percent in ("-1", "101", "10.5", "abc")
        ),
        ({"canary_tag": ""}, b"Enter the phase tag"),
        ({"reason": " "}, b"Give a reason"),
    ],
)
def test_a_bad_initial_value_is_explained_and_nothing_is_written(
    connected, admin_user, data, message
):
    form = {"canary_percent": "10", "canary_tag": "B2a", "reason": "setup", **data}
    response = client_for(admin_user).post(
        initial_url(connected), form, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert message in response.content
    assert not DesiredConfig.objects.exists() and not ConfigChange.objects.exists()


def test_the_initial_value_is_recorded_and_queued(connected, admin_user):
    form = {"canary_percent": "10", "canary_tag": "B2a", "reason": "runbook step 1.2"}
    response = client_for(admin_user).post(
        initial_url(connected), form, headers={"HX-Request": "true"}
    )
    # htmx navigates on HX-Redirect; a 302 it would follow itself, nesting the page in the form.
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("rollout:environment", args=[connected.public_id])
    assert response.content == b""
    change = ConfigChange.objects.get()
    assert (change.version, change.kind, change.state) == (1, "initial", "requested")
    assert change.requested_by == admin_user and change.reason == "runbook step 1.2"
    assert AuditEntry.objects.get(action="config.initial").actor == admin_user


def test_the_initial_value_cannot_be_written_twice(connected, admin_user):
    form = {"canary_percent": "10", "canary_tag": "B2a", "reason": "setup"}
    client = client_for(admin_user)
    client.post(initial_url(connected), form)
    second = client.post(initial_url(connected), form)
    assert second.status_code == 422 and b"already has a desired config" in second.content
    assert ConfigChange.objects.count() == 1


def test_an_unconnected_environment_gets_no_initial_value(production_unconnected, admin_user):
    form = {"canary_percent": "10", "canary_tag": "B2a", "reason": "setup"}
    response = client_for(admin_user).post(initial_url(production_unconnected), form)
    assert response.status_code == 422 and b"Check the connection first" in response.content


def test_the_live_overview_costs_the_same_queries_for_any_number_of_environments(edge, viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(viewer)

    def queries_for_overview():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("rollout:overview"), headers={"HX-Request": "true"})
        assert response.status_code == 200
        return len(captured), response.content.decode()

    for index in range(3):
        configured_environment(edge, service_name=f"service-{index}")
    few, page = queries_for_overview()
    assert page.count("initial value") == 3, "each open change is shown"
    for index in range(3, 9):
        configured_environment(edge, service_name=f"service-{index}")
    many, page = queries_for_overview()
    assert page.count("initial value") == 9
    assert many == few
