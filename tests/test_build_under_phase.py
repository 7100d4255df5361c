"""The build under a phase: the window records the Worker version Cloudflare served when it
began; a deploy inside the window is caught by the next read, audited, announced, shown and put
in the evidence, and GO waits until a person restarts the window or keeps it with a reason.
Against the edge stand-in's deployments API over HTTP."""

from datetime import UTC, timedelta

import pytest
from django.urls import reverse

from monitoring.observation import observe
from outbox.models import Notification
from rollout.models import AuditEntry, BuildChange, Environment, PhaseRun, Rollout
from rollout.services import deployments, reports, signoff
from rollout.services.evidence import build
from tests.conftest import client_for, htmx_client_for
from tests.support.rollouts import NOW, attest_all, observing, sign

pytestmark = pytest.mark.django_db

SCRIPT = "pix-immo-api"
OLD = "3f2a1b2c-aaaa-4aaa-8aaa-000000000001"
NEW = "8c1d4e5f-bbbb-4bbb-8bbb-000000000002"


def _z(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def production(production_at_b2a, edge, settings):
    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/deployments"
    Environment.objects.filter(pk=production_at_b2a.pk).update(worker_script_name=SCRIPT)
    edge.deploy(SCRIPT, version_id=OLD, created_on=_z(NOW - timedelta(days=3)))
    observe(production_at_b2a.pk)
    return Environment.objects.get(pk=production_at_b2a.pk)


@pytest.fixture
def window(production, tech_lead):
    """A B2a window that took effect 25 h ago (its 24 h have ended), all attested, on OLD."""
    run = observing(production)
    attest_all(run, tech_lead)
    return run


def _deploy_inside(edge, run, hours=3, version_id=NEW, **more):
    edge.deploy(
        SCRIPT,
        version_id=version_id,
        created_on=_z(run.in_effect_at + timedelta(hours=hours)),
        message="hotfix upload retries",
        author_email="max@example.com",
        **more,
    )
    observe(run.rollout.environment_id)


def test_a_window_records_the_version_live_when_it_began(window, viewer):
    assert window.build_deployment.version_ids == [OLD]
    page = client_for(viewer).get(reverse("rollout:phase_run", args=[window.public_id]))
    assert f'<code class="build">{OLD}</code>' in page.content.decode()
    assert build(window, NOW).document["phase"]["build"] == OLD


def test_a_deploy_inside_the_window_is_caught_audited_announced_and_shown(edge, window, viewer):
    _deploy_inside(edge, window)

    change = BuildChange.objects.get(phase_run=window)
    assert change.is_open
    assert change.changed_at == window.in_effect_at + timedelta(hours=3)
    assert (change.before.version_ids, change.after.version_ids) == ([OLD], [NEW])
    entry = AuditEntry.objects.get(action="phase.build_changed")
    assert f"({OLD} → {NEW})" in entry.detail and entry.object_id == str(window.public_id)
    notification = Notification.objects.get(channel=Notification.Channel.SLACK_DEPLOYMENTS)
    assert "new Worker build went live" in notification.subject
    assert "max@example.com" in str(notification.payload)

    document = build(window, NOW).document
    (shift,) = document["build_changes"]
    assert (shift["old"], shift["new"], shift["resolution"]) == (OLD, NEW, "")
    criterion = next(c for c in document["recommendation"]["criteria"] if c["key"] == "build")
    assert criterion["verdict"] == "hold"
    assert (
        f"build changed at {change.changed_at:%Y-%m-%d %H:%M} UTC ({OLD} → {NEW})"
        in (criterion["detail"])
    )
    assert document["recommendation"]["outcome"] == "hold"

    page = client_for(viewer).get(reverse("rollout:phase_run", args=[window.public_id]))
    html = page.content.decode()
    assert "Build changed during the window" in html
    assert "3f2a1b2c → 8c1d4e5f" in html
    assert "restart-window" not in html, "a viewer sees no choice"


def test_go_is_refused_until_a_person_chooses(edge, window, tech_lead):
    _deploy_inside(edge, window)
    with pytest.raises(signoff.SignRefused, match="new Worker build went live"):
        sign(window, tech_lead, "tech_lead", justification="looks fine to me")
    assert not window.decisions.exists()
    assert AuditEntry.objects.filter(action="decision.refused").exists()


def test_keeping_the_window_needs_a_reason_and_is_audited(edge, window, release_manager, devops):
    _deploy_inside(edge, window)
    change = BuildChange.objects.get()
    client = htmx_client_for(release_manager)
    url = reverse("rollout:answer_build_change", args=[change.public_id])

    refused = client.post(url, {"choice": "keep", "reason": "  "})
    assert refused.status_code == 422
    assert "Say why the window" in refused.content.decode()
    change.refresh_from_db()
    assert change.is_open

    kept = client.post(url, {"choice": "keep", "reason": "only a log line changed"})
    assert kept.status_code == 200 and kept["HX-Redirect"].endswith(f"/phases/{window.public_id}/")
    change.refresh_from_db()
    assert change.resolution == "kept" and change.resolved_by == release_manager
    entry = AuditEntry.objects.get(action="phase.build_kept")
    assert entry.actor == release_manager and entry.reason == "only a log line changed"

    evidence = build(window, NOW)
    assert evidence.outcome == "go"
    (shift,) = evidence.document["build_changes"]
    assert shift["resolution"] == "kept" and shift["reason"] == "only a log line changed"
    sign(window, devops, "devops")  # GO may be signed now


def test_restarting_the_window_observes_the_new_build_from_its_time(
    edge, window, release_manager, viewer
):
    _deploy_inside(edge, window, hours=20)
    change = BuildChange.objects.get()
    client = htmx_client_for(release_manager)

    answer = client.post(
        reverse("rollout:answer_build_change", args=[change.public_id]),
        {"choice": "restart", "reason": "the hotfix touches uploads"},
    )

    restarted = PhaseRun.objects.get(window_number=2)
    assert answer["HX-Redirect"].endswith(f"/phases/{restarted.public_id}/")
    window.refresh_from_db()
    assert window.state == PhaseRun.State.RESTARTED
    assert restarted.state == PhaseRun.State.OBSERVING
    assert restarted.in_effect_at == change.changed_at
    assert restarted.window_ends_at == change.changed_at + timedelta(hours=24)
    assert restarted.build_deployment.version_ids == [NEW]
    assert restarted.check_ins.count() == 6
    assert Rollout.objects.get().state == Rollout.State.OBSERVING
    change.refresh_from_db()
    assert change.resolution == "restarted" and change.restarted_as == restarted
    entry = AuditEntry.objects.get(action="phase.window_restarted")
    assert entry.actor == release_manager and entry.reason == "the hotfix touches uploads"
    assert entry.object_id == str(restarted.public_id)
    assert not build(restarted, NOW).document["build_changes"]

    page = client_for(viewer).get(reverse("rollout:phase_run", args=[window.public_id]))
    assert "Window restarted by rita" in page.content.decode()


@pytest.mark.parametrize("choice", ["keep", "restart"])
def test_a_viewer_may_not_choose(edge, window, viewer, choice):
    _deploy_inside(edge, window)
    change = BuildChange.objects.get()
    response = client_for(viewer).post(
        reverse("rollout:answer_build_change", args=[change.public_id]),
        {"choice": choice, "reason": "mine"},
    )
    assert response.status_code == 403
    change.refresh_from_db()
    assert change.is_open
    assert AuditEntry.objects.filter(action="permission.denied", actor=viewer).count() == 1
    assert not PhaseRun.objects.filter(window_number=2).exists()


def test_a_second_answer_is_refused_and_audited(edge, window, release_manager, tech_lead):
    _deploy_inside(edge, window)
    change = BuildChange.objects.get()
    deployments.keep_window(change, reason="fine", person=release_manager, now=NOW)

    response = htmx_client_for(tech_lead).post(
        reverse("rollout:answer_build_change", args=[change.public_id]),
        {"choice": "restart"},
    )

    assert response.status_code == 409
    assert "already answered (window kept by rita)" in response.content.decode()
    refusal = AuditEntry.objects.get(action="phase.build_change_refused")
    assert refusal.actor == tech_lead and refusal.outcome == AuditEntry.Outcome.REFUSED
    assert not PhaseRun.objects.filter(window_number=2).exists()


def test_a_bad_choice_is_answered_422(edge, window, release_manager):
    _deploy_inside(edge, window)
    change = BuildChange.objects.get()
    response = htmx_client_for(release_manager).post(
        reverse("rollout:answer_build_change", args=[change.public_id]), {"choice": "ignore"}
    )
    assert response.status_code == 422
    assert "Choose: restart the window or keep it." in response.content.decode()


def test_a_deploy_after_the_window_ended_is_not_under_its_evidence(edge, window):
    _deploy_inside(edge, window, hours=24.5)
    assert window.rollout.environment.worker_deployments.count() == 2
    assert not BuildChange.objects.exists()


def test_a_redeploy_of_the_same_version_is_no_build_change(edge, window):
    _deploy_inside(edge, window, version_id=OLD)
    assert not BuildChange.objects.exists()


def test_the_reports_show_the_build_and_its_change(edge, window):
    _deploy_inside(edge, window)
    report = reports.markdown(reports.phase_report(window))
    assert f"**Build:** {OLD}" in report
    assert f"build changed at {(window.in_effect_at + timedelta(hours=3)):%Y-%m-%d %H:%M} UTC" in (
        report
    )


def test_the_overview_says_the_window_needs_a_person(edge, window, viewer, release_manager):
    _deploy_inside(edge, window)
    needs = "a new Worker build went live during the window (3f2a1b2c → 8c1d4e5f)"
    client = client_for(viewer)
    assert needs in client.get(reverse("rollout:overview")).content.decode()

    deployments.keep_window(BuildChange.objects.get(), reason="ok", person=release_manager, now=NOW)

    assert needs not in client.get(reverse("rollout:overview")).content.decode()
