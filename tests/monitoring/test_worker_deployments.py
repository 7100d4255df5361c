"""The Worker version serving each environment, read from Cloudflare's deployments API by the
scheduled observation: against the edge stand-in over HTTP, its answers and its failures."""

import json

import pytest
from django.urls import reverse

from monitoring.observation import observe
from rollout.models import AuditEntry, Environment, WorkerDeployment
from tests.conftest import client_for, make_environment

pytestmark = pytest.mark.django_db

SCRIPT = "pix-immo-api"
DEPLOYMENTS_PATH = f"/workers/scripts/{SCRIPT}/deployments"


@pytest.fixture
def production_with_script(edge):
    environment = make_environment(edge)
    Environment.objects.filter(pk=environment.pk).update(worker_script_name=SCRIPT)
    environment.refresh_from_db()
    return environment


def _observe(environment) -> Environment:
    observe(environment.pk)
    return Environment.objects.select_related("live_deployment").get(pk=environment.pk)


def _pages(environment, viewer) -> list[str]:
    client = client_for(viewer)
    return [
        client.get(reverse("rollout:environment", args=[environment.public_id])).content.decode(),
        client.get(reverse("rollout:overview")).content.decode(),
    ]


def test_the_live_version_is_read_recorded_and_shown(edge, production_with_script, viewer):
    deployed = edge.deploy(
        SCRIPT,
        version_id="3f2a1b2c-0000-4000-8000-000000000001",
        message="Native upload handlers",
        author_email="anna@example.com",
    )

    environment = _observe(production_with_script)

    live = environment.live_deployment
    assert live.deployment_id == deployed["id"]
    assert live.version_ids == ["3f2a1b2c-0000-4000-8000-000000000001"]
    assert live.message == "Native upload handlers"
    assert live.author_email == "anna@example.com"
    assert live.created_on is not None
    assert environment.deployments_error_kind == ""
    entry = AuditEntry.objects.get(action="worker.deployed")
    assert "3f2a1b2c-0000-4000-8000-000000000001" in entry.detail
    for page in _pages(environment, viewer):
        assert "version <code" in page and ">3f2a1b2c</code>" in page
        assert "anna@example.com" in page
        assert "Native upload handlers" in page


def test_a_second_read_of_the_same_deployment_records_nothing_new(edge, production_with_script):
    edge.deploy(SCRIPT)
    _observe(production_with_script)
    _observe(production_with_script)

    assert WorkerDeployment.objects.count() == 1
    assert AuditEntry.objects.filter(action="worker.deployed").count() == 1


def test_an_environment_without_a_script_is_not_read(edge, viewer):
    environment = make_environment(edge)
    calls = len(edge.requests())

    environment = _observe(environment)

    assert not [r for r in edge.requests(since=calls) if "/workers/" in r["path"]]
    assert environment.live_deployment is None
    assert "Worker <code>" not in _pages(environment, viewer)[0]


def _fault(edge, **fault):
    edge.knobs(kv_faults=[{"method": "GET", "path": DEPLOYMENTS_PATH, **fault}])


@pytest.mark.parametrize(
    ("fault", "state", "words"),
    [
        (
            {
                "status": 401,
                "body": json.dumps(
                    {
                        "success": False,
                        "errors": [{"code": 10000, "message": "Authentication error"}],
                        "messages": [],
                        "result": None,
                    }
                ),
            },  # noqa: E501
            "API token refused",
            "Workers Scripts Read",
        ),
        ({"status": 429, "retry_after": 30}, "rate limited", "HTTP 429"),
        (
            {"status": 200, "body": '{"success": true, "result": {"deployments": "soon"}}'},
            "unreadable answer",
            "no result.deployments list",
        ),  # noqa: E501
        ({"status": 200, "body": "<html>gateway</html>"}, "unreadable answer", "not JSON"),
        ({"status": 502}, "Cloudflare API error", "HTTP 502"),
    ],
)
def test_a_failed_read_is_a_state_on_the_pages(
    edge, production_with_script, viewer, fault, state, words
):
    edge.deploy(SCRIPT, version_id="aaaaaaaa-1111")
    _observe(production_with_script)
    _fault(edge, **fault)

    environment = _observe(production_with_script)

    assert environment.deployments_state == state
    assert words in environment.deployments_error
    assert environment.live_deployment.version_ids == ["aaaaaaaa-1111"]  # the last one read stays
    for page in _pages(environment, viewer):
        assert f'<strong class="deployments-state">{state}</strong>' in page
        assert "the version shown is the last one read" in page


def test_a_missing_script_is_a_state_not_an_exception(edge, production_with_script, viewer):
    environment = _observe(production_with_script)  # the stand-in has no such script

    assert environment.deployments_state == "Worker script not found"
    assert f"no Worker script named '{SCRIPT}'" in environment.deployments_error
    assert environment.live_deployment is None
    for page in _pages(environment, viewer):
        assert "Worker script not found" in page


def test_a_rate_limit_is_waited_out_before_the_next_read(edge, production_with_script):
    edge.deploy(SCRIPT)
    _fault(edge, status=429, retry_after=600)
    _observe(production_with_script)
    calls = len(edge.requests())

    environment = _observe(production_with_script)

    assert not [r for r in edge.requests(since=calls) if "/workers/" in r["path"]]
    assert environment.deployments_state == "rate limited"
    assert environment.deployments_retry_at is not None


def test_a_read_after_the_failure_clears_the_state(edge, production_with_script):
    edge.deploy(SCRIPT)
    _fault(edge, status=500)
    _observe(production_with_script)

    environment = _observe(production_with_script)

    assert environment.deployments_error_kind == ""
    assert environment.live_deployment is not None


def test_a_two_version_split_is_shown_with_both_percentages(edge, production_with_script, viewer):
    edge.deploy(SCRIPT, version_id="11111111-old")
    edge.deploy(SCRIPT, version_id="22222222-new", percentage=10)

    environment = _observe(production_with_script)

    assert environment.live_deployment.is_split
    for page in _pages(environment, viewer):
        assert "11111111 90% + 22222222 10%" in page
        assert "a version-level split is in play on top of our cohort split" in page
