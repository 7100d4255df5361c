"""A pipeline reports "version X deployed" right after `wrangler deploy`, through the API's route
to the one service function (rollout.services.deployments.record_reported_deployment)."""

from rollout.models import AuditEntry, Environment, WorkerDeployment
from tests.api.conftest import assert_problem, token_of
from tests.conftest import make_environment

VERSION = "5e6f7a8b-cccc-4ccc-8ccc-000000000003"
ROUTE = "/environments/pix-immo-api/preview/deployments"


def _preview(edge):
    environment = make_environment(edge, name="preview")
    Environment.objects.filter(pk=environment.pk).update(worker_script_name="pix-immo-api-preview")


def test_a_pipeline_reports_a_deployed_version(api, edge, release_manager):
    _preview(edge)
    answer = api(token_of(release_manager)).post(
        ROUTE, json={"version_id": VERSION, "message": "pipeline 812"}
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["environment"], body["version_id"], body["reported_by"]) == (
        "pix-immo-api/preview",
        VERSION,
        release_manager.username,
    )
    assert body["confirmed_at"] is None
    entry = AuditEntry.objects.get(action="worker.reported")
    assert entry.via.startswith("token pipeline") and entry.reason == "pipeline 812"


def test_a_viewer_cannot_report_and_nothing_is_written(api, edge, viewer):
    _preview(edge)
    answer = api(token_of(viewer)).post(ROUTE, json={"version_id": VERSION})

    assert_problem(answer, 403)
    assert not WorkerDeployment.objects.filter(via=WorkerDeployment.Via.REPORTED).exists()
    assert AuditEntry.objects.get(action="permission.denied").via.startswith("token pipeline")


def test_bad_reports_are_refused_with_a_reason(api, edge, release_manager):
    _preview(edge)
    client = api(token_of(release_manager))

    assert_problem(client.post(ROUTE, json={"version_id": "not a version"}), 422)
    assert AuditEntry.objects.filter(action="worker.report_refused").count() == 1
    assert_problem(client.post(ROUTE, json={"version_id": VERSION, "extra": 1}), 422)
    assert_problem(client.post(ROUTE, json={"version_id": 42}), 422)
    assert_problem(
        client.post(ROUTE, content=b"{", headers={"Content-Type": "application/json"}), 400
    )
    assert not WorkerDeployment.objects.filter(via=WorkerDeployment.Via.REPORTED).exists()
