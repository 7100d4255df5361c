"""A pipeline reports "version X deployed" right after `wrangler deploy`: one service function,
permission-checked and audited, that the API's route calls; the scheduled read of Cloudflare
confirms the report."""

import pytest

from monitoring.observation import observe
from rollout.models import AuditEntry, Environment, WorkerDeployment
from rollout.permissions import Refused
from rollout.services import deployments
from tests.conftest import make_environment

pytestmark = pytest.mark.django_db

SCRIPT = "pix-immo-api-preview"
VERSION = "5e6f7a8b-cccc-4ccc-8ccc-000000000003"


@pytest.fixture
def preview(edge):
    environment = make_environment(edge, name="preview")
    Environment.objects.filter(pk=environment.pk).update(worker_script_name=SCRIPT)
    environment.refresh_from_db()
    return environment


def test_a_report_is_recorded_audited_and_confirmed_by_the_next_read(
    edge, preview, release_manager
):
    reported = deployments.record_reported_deployment(
        preview, f" {VERSION} ", "pipeline 812: native uploads", release_manager
    )

    assert reported.via == "reported" and reported.version_ids == [VERSION]
    assert reported.reported_by == release_manager and reported.confirmed_at is None
    entry = AuditEntry.objects.get(action="worker.reported")
    assert entry.actor == release_manager and entry.reason == "pipeline 812: native uploads"
    assert "the next read confirms it" in entry.detail

    edge.deploy(SCRIPT, version_id=VERSION)
    observe(preview.pk)

    reported.refresh_from_db()
    assert reported.confirmed_at is not None


def test_a_report_of_the_version_already_live_is_confirmed_at_once(edge, preview, release_manager):
    edge.deploy(SCRIPT, version_id=VERSION)
    observe(preview.pk)
    preview.refresh_from_db()

    reported = deployments.record_reported_deployment(preview, VERSION, "", release_manager)

    assert reported.confirmed_at is not None
    assert "Cloudflare already serves it" in AuditEntry.objects.get(action="worker.reported").detail


@pytest.mark.parametrize(
    ("version_id", "message", "said"),
    [
        ("", "", "A version id is 1 to 64 letters"),
        ("v1; DROP TABLE", "", "A version id is 1 to 64 letters"),
        ("x" * 65, "", "A version id is 1 to 64 letters"),
        (VERSION, "m" * 1001, "The message is at most 1,000 characters."),
    ],
)
def test_a_bad_report_is_refused_audited_and_records_nothing(
    preview, release_manager, version_id, message, said
):
    with pytest.raises(deployments.DeploymentRefused, match=said):
        deployments.record_reported_deployment(preview, version_id, message, release_manager)
    assert not WorkerDeployment.objects.exists()
    refusal = AuditEntry.objects.get(action="worker.report_refused")
    assert refusal.outcome == AuditEntry.Outcome.REFUSED and refusal.actor == release_manager


def test_a_person_without_the_permission_is_refused_and_nothing_is_written(preview, viewer):
    with pytest.raises(Refused):
        deployments.record_reported_deployment(preview, VERSION, "", viewer)
    assert not WorkerDeployment.objects.exists()
    assert AuditEntry.objects.get(action="permission.denied").actor == viewer
