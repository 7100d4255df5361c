"""The build is read, not typed: the preview suite runs against the Worker version live on
preview (typing is a fallback with a reason, audited), and the production pre-flight compares
the version ids live on production with those the suite verified; a version split on production
asks for an acknowledgement. Against the edge stand-in's deployments API over HTTP."""

import pytest
from django.urls import reverse

from monitoring.observation import observe
from rollout.models import (
    AuditEntry,
    Environment,
    PreflightAttestation,
    PreviewRun,
    Service,
)
from rollout.services import deployments, preflight
from tests.conftest import htmx_client_for
from tests.preview.test_preflight import TUESDAY_11, complete, passed_run, preflight_url

pytestmark = pytest.mark.django_db

Kind = PreflightAttestation.Kind
V1 = "11111111-aaaa-4aaa-8aaa-000000000001"
V2 = "22222222-bbbb-4bbb-8bbb-000000000002"
SCRIPTS = {"preview": "pix-immo-api-preview", "production": "pix-immo-api"}


def reads(edge, environment, version_id=None, **deployment) -> Environment:
    """The environment names its Worker script; with ``version_id``, that version is deployed
    first. Then one observation reads it."""
    script = SCRIPTS[environment.name]
    Environment.objects.filter(pk=environment.pk).update(worker_script_name=script)
    if version_id:
        edge.deploy(script, version_id=version_id, **deployment)
    observe(environment.pk)
    return Environment.objects.get(pk=environment.pk)


def suite_url(environment, name="start_preview_run"):
    return reverse(f"rollout:{name}", args=[environment.public_id])


# --- the preview suite ---------------------------------------------------------------------------


def test_the_suite_runs_against_the_version_live_on_preview(edge, preview_adopted, release_manager):
    preview = reads(edge, preview_adopted, V1, message="upload handlers")
    client = htmx_client_for(release_manager)

    page = client.get(suite_url(preview, "preview_suite")).content.decode()
    assert "The suite runs against version" in page and ">11111111</code>" in page

    response = client.post(suite_url(preview), {})

    run = PreviewRun.objects.get()
    assert response["HX-Redirect"].endswith(f"/preview-runs/{run.public_id}/")
    assert run.deployment == preview.live_deployment and run.version_ids == [V1]
    assert run.build == V1 and run.build_typed_reason == ""
    assert Service.objects.get().current_build == V1
    assert not AuditEntry.objects.filter(action="preview_suite.build_typed").exists()


def test_typing_the_build_needs_a_reason_and_is_audited(edge, preview_adopted, release_manager):
    preview = reads(edge, preview_adopted, V1)
    client = htmx_client_for(release_manager)

    refused = client.post(suite_url(preview), {"build": "hand-built-7"})
    assert refused.status_code == 409
    assert "Say why you type the build" in refused.content.decode()
    assert not PreviewRun.objects.exists()
    assert AuditEntry.objects.get(action="preview_suite.refused").actor == release_manager

    client.post(suite_url(preview), {"build": "hand-built-7", "build_reason": "wrangler dev"})

    run = PreviewRun.objects.get()
    assert run.deployment is None and run.version_ids == ["hand-built-7"]
    assert run.build_typed_reason == "wrangler dev"
    typed = AuditEntry.objects.get(action="preview_suite.build_typed")
    assert typed.reason == "wrangler dev" and f"live: {V1}" in typed.detail


def test_an_unknown_live_version_is_said_and_typing_is_the_way(
    edge, preview_adopted, release_manager
):
    preview = reads(edge, preview_adopted)  # the stand-in has no such script
    client = htmx_client_for(release_manager)
    page = client.get(suite_url(preview, "preview_suite")).content.decode()
    assert "The version live on preview is not known (Worker script not found" in page

    refused = client.post(suite_url(preview), {})

    assert refused.status_code == 409
    assert "live on preview is not known (Worker script not found" in refused.content.decode()
    assert not PreviewRun.objects.exists()


def test_a_viewer_may_not_start_the_suite(edge, preview_adopted, viewer):
    preview = reads(edge, preview_adopted, V1)
    assert htmx_client_for(viewer).post(suite_url(preview), {}).status_code == 403
    assert not PreviewRun.objects.exists()
    assert AuditEntry.objects.get(action="permission.denied").actor == viewer


def test_a_reported_deployment_is_verified_before_a_read_confirms_it(
    edge, preview_adopted, release_manager
):
    preview = reads(edge, preview_adopted, V1)
    reported = deployments.record_reported_deployment(preview, V2, "pipeline 812", release_manager)
    assert deployments.current_build(preview) == reported

    htmx_client_for(release_manager).post(suite_url(preview), {})

    assert PreviewRun.objects.get().deployment == reported
    preview = reads(edge, preview, V2)
    reported.refresh_from_db()
    assert reported.confirmed_at is not None
    assert deployments.current_build(preview).via == "read"


# --- the pre-flight ------------------------------------------------------------------------------


def test_the_preflight_compares_the_version_ids_of_preview_and_production(
    edge, preview_adopted, production_adopted, release_manager
):
    preview = reads(edge, preview_adopted, V1)
    production = reads(edge, production_adopted, V1)
    passed_run(preview, release_manager, build=V1, deployment=preview.live_deployment)

    item = preflight.evaluate(production, now=TUESDAY_11).item("preview_suite")
    assert item.done, item.detail
    assert item.label == "Preview suite passed for the version live on production"
    assert f"Version {V1} passed all checks" in item.detail

    production = reads(edge, production, V2)
    item = preflight.evaluate(production, now=TUESDAY_11).item("preview_suite")
    assert not item.done
    assert f"No preview suite has verified version {V2} (live on production)" in item.detail


def test_a_typed_build_of_the_same_id_counts_for_production(
    edge, preview_adopted, production_adopted, release_manager
):
    preview = reads(edge, preview_adopted)
    production = reads(edge, production_adopted, V1)
    passed_run(preview, release_manager, build=V1)
    assert preflight.evaluate(production, now=TUESDAY_11).item("preview_suite").done


def test_production_not_read_blocks_the_preview_item(
    edge, preview_adopted, production_adopted, release_manager
):
    production = reads(edge, production_adopted)  # no script on the stand-in
    passed_run(preview_adopted, release_manager, build=V1)
    item = preflight.evaluate(production, now=TUESDAY_11).item("preview_suite")
    assert not item.done
    assert "The Worker version live on production is not known" in item.detail


def test_a_version_split_on_production_asks_for_an_acknowledgement(
    edge, preview_adopted, production_adopted, release_manager
):
    production = reads(edge, production_adopted, V1)
    production = reads(edge, production, V2, percentage=10)
    preview = reads(edge, preview_adopted, V1)
    complete(preview, production, release_manager)
    passed_run(preview, release_manager, build=V1, deployment=preview.live_deployment)
    passed_run(preview, release_manager, build=V2)
    checklist = preflight.evaluate(production, now=TUESDAY_11)
    split = checklist.item(Kind.VERSION_SPLIT)
    assert checklist.item("preview_suite").done
    assert not split.done and not checklist.complete
    assert f"{V1} 90% + {V2} 10%" in split.detail
    assert "a version-level split is in play on top of our cohort split" in split.detail

    client = htmx_client_for(release_manager)
    url = preflight_url("preflight_attest", production, Kind.VERSION_SPLIT)
    refused = client.post(url, {"note": " "})
    assert refused.status_code == 422
    assert "Say why the phase may start while Cloudflare splits" in refused.content.decode()

    assert client.post(url, {"note": "the 10% is the same code"}).status_code == 200
    attestation = PreflightAttestation.objects.get(kind=Kind.VERSION_SPLIT)
    assert attestation.deployment == production.live_deployment
    assert (
        "the 10% is the same code"
        in AuditEntry.objects.get(action="preflight.attested", after__kind="version_split").reason
    )
    checklist = preflight.evaluate(production, now=TUESDAY_11)
    assert checklist.item(Kind.VERSION_SPLIT).done and checklist.complete

    production = reads(edge, production, V2, percentage=50)  # another split: asked again
    assert not preflight.evaluate(production, now=TUESDAY_11).item(Kind.VERSION_SPLIT).done


def test_no_split_no_acknowledgement_to_give(edge, production_adopted, release_manager):
    production = reads(edge, production_adopted, V1)
    checklist = preflight.evaluate(production, now=TUESDAY_11)
    assert Kind.VERSION_SPLIT not in [item.key for item in checklist.items]
    response = htmx_client_for(release_manager).post(
        preflight_url("preflight_attest", production, Kind.VERSION_SPLIT), {"note": "ok"}
    )
    assert response.status_code == 409
    assert not PreflightAttestation.objects.exists()
