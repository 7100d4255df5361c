"""The suite's pages: starting a run (who may, what a bad click says), the live checks fragment
and its polling, the report as HTML and as a Markdown download."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rollout.models import AuditEntry, PreviewCheck, PreviewRun, Service
from rollout.services import preview as preview_suite
from rollout.views.preview import report_markdown
from tests.conftest import client_for
from tests.preview.conftest import run_now

pytestmark = pytest.mark.django_db


def start_url(environment):
    return reverse("rollout:start_preview_run", args=[environment.public_id])


def run_url(name, run):
    return reverse(f"rollout:{name}", args=[run.public_id])


# --- starting a run ------------------------------------------------------------------------------


def test_a_release_manager_starts_a_run_and_sets_the_current_build(
    preview_adopted, release_manager
):
    response = client_for(release_manager).post(
        start_url(preview_adopted), {"build": " deploy-42 "}
    )
    run = PreviewRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_url("preview_run", run)
    assert (run.state, run.build, run.started_by) == ("queued", "deploy-42", release_manager)
    assert list(run.checks.values_list("name", flat=True)) == preview_suite.CHECK_ORDER
    assert Service.objects.get().current_build == "deploy-42"
    assert AuditEntry.objects.filter(action="preview_suite.requested", actor=release_manager)
    changed = AuditEntry.objects.get(action="service.current_build")
    assert changed.after == {"current_build": "deploy-42"}


@pytest.mark.parametrize("person", ["viewer", "tech_lead", "devops", "outsider"])
def test_only_people_who_request_changes_may_run_it(request, preview_adopted, person):
    user = request.getfixturevalue(person)
    response = client_for(user).post(start_url(preview_adopted), {"build": "b"})
    assert response.status_code == 403
    assert not PreviewRun.objects.exists()
    denied = AuditEntry.objects.get(action="permission.denied")
    assert denied.actor == user and "rollout.request_change" in denied.detail


def test_a_run_needs_post_and_a_login(preview_adopted, admin_user):
    assert client_for(admin_user).get(start_url(preview_adopted)).status_code == 405
    response = Client().post(start_url(preview_adopted), {"build": "b"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not PreviewRun.objects.exists()


def test_a_run_without_a_build_is_refused_with_a_message(preview_adopted, release_manager):
    response = client_for(release_manager).post(start_url(preview_adopted), {"build": "   "})
    assert response.status_code == 422
    assert b"Name the build deployed to preview" in response.content
    assert not PreviewRun.objects.exists() and Service.objects.get().current_build == ""


def test_one_run_at_a_time(preview_adopted, release_manager):
    client = client_for(release_manager)
    client.post(start_url(preview_adopted), {"build": "b1"})
    response = client.post(start_url(preview_adopted), {"build": "b2"})
    assert response.status_code == 409
    assert b"already in progress" in response.content
    assert PreviewRun.objects.count() == 1 and Service.objects.get().current_build == "b1"
    assert AuditEntry.objects.filter(action="preview_suite.refused", outcome="refused").exists()


def test_the_suite_runs_against_preview_only(production_adopted, release_manager):
    response = client_for(release_manager).post(start_url(production_adopted), {"build": "b"})
    assert response.status_code == 404
    assert not PreviewRun.objects.exists()


def test_the_preview_page_offers_the_run_and_lists_runs(preview_adopted, release_manager, viewer):
    run_now(preview_adopted, release_manager, build="deploy-7")
    Service.objects.update(current_build="deploy-7")
    page = client_for(release_manager).get(
        reverse("rollout:environment", args=[preview_adopted.public_id])
    )
    assert b'id="run-suite-button"' in page.content and b'value="deploy-7"' in page.content
    listing = client_for(viewer).get(
        reverse("rollout:preview_suite", args=[preview_adopted.public_id])
    )
    assert listing.status_code == 200 and b"deploy-7" in listing.content
    assert b"PASSED" in listing.content and b"run-suite-button" not in listing.content


# --- live progress ------------------------------------------------------------------------------


def test_the_checks_fragment_polls_until_the_run_finished(preview_adopted, release_manager, viewer):
    run = preview_suite.create_run(
        environment=preview_adopted, build="b", started_by=release_manager
    )
    client = client_for(viewer)
    page = client.get(run_url("preview_run", run))
    assert page.status_code == 200 and b'hx-trigger="every 1s"' in page.content
    fragment = client.get(run_url("preview_run_checks", run), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert fragment.content.count(b'class="check check-pending"') == 6
    assert b"Polls itself" not in fragment.content, "template comments stay out of the page"
    token = fragment.content.split(b"?u=")[1].split(b'"')[0].decode()
    unchanged = client.get(run_url("preview_run_checks", run) + f"?u={token}")
    assert unchanged.status_code == 204

    PreviewCheck.objects.filter(run=run, name="rate_limit").update(state="running")
    moved = client.get(run_url("preview_run_checks", run) + f"?u={token}")
    assert moved.status_code == 200 and "running…" in moved.content.decode()

    preview_suite.execute(run.pk)
    done = client.get(run_url("preview_run_checks", run) + f"?u={token}")
    assert done.status_code == 286, "stop polling"
    assert b"hx-trigger" not in done.content
    assert b'id="decision">GO<' in done.content and b"report.md" in done.content


def test_reading_needs_the_view_permission(preview_adopted, release_manager, outsider):
    run = run_now(preview_adopted, release_manager)
    for name in ("preview_run", "preview_run_checks", "preview_report", "preview_report_markdown"):
        assert client_for(outsider).get(run_url(name, run)).status_code == 403
        anonymous = Client().get(run_url(name, run))
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


# --- the report ---------------------------------------------------------------------------------


def test_a_passed_run_reports_go_with_its_facts(
    preview_adopted, production_adopted, release_manager, viewer
):
    run = run_now(preview_adopted, release_manager, build="deploy-99")
    html = client_for(viewer).get(run_url("preview_report", run)).content.decode()
    assert "deploy-99" in html and "rita" in html and preview_adopted.qa_url in html
    assert html.count("✅ PASS") == 6 and 'id="decision">GO<' in html
    assert "Production pre-flight" in html and "start phase B2b (25%)" in html

    response = client_for(viewer).get(run_url("preview_report_markdown", run))
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="preview-report-')
    text = response.content.decode()
    assert f"**Date:** {run.finished_at:%Y-%m-%d %H:%M} UTC" in text
    assert f"**Environment:** preview ({preview_adopted.qa_url})" in text
    assert "**Tester:** rita" in text and "**Build:** deploy-99" in text
    assert "| Test | Status | Notes |" in text
    assert "| Sticky cohort (native) | ✅ PASS | cohort=native;reason=cookie |" in text
    assert "| Header override | ✅ PASS | cohort=native;reason=header |" in text
    assert "**GO**" in text and "1. Production pre-flight" in text


def test_a_failed_run_reports_no_go_with_the_reasons(edge, preview_adopted, release_manager):
    edge.knobs(ignore_header_override={"preview": True})
    run = run_now(preview_adopted, release_manager)
    text = report_markdown(run)
    assert "| Header override | ❌ FAIL | got cohort=" in text
    assert "the edge ignored the X-Canary: 1 override" in text
    assert "**NO-GO**" in text and "1. Fix Header override: got cohort=" in text
    assert "run the suite again" in text


def test_markdown_cells_stay_in_their_column(preview_adopted, release_manager):
    run = preview_suite.create_run(
        environment=preview_adopted, build="b", started_by=release_manager
    )
    PreviewRun.objects.filter(pk=run.pk).update(state="failed", finished_at=timezone.now())
    PreviewCheck.objects.filter(run=run).update(state="failed", reason="a | b\nc")
    text = report_markdown(PreviewRun.objects.get(pk=run.pk))
    assert "| /qa endpoint structure | ❌ FAIL | a \\| b c |" in text
