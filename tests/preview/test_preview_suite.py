"""The suite against the edge stand-in: all passes on a healthy edge, and each broken behaviour
fails exactly its check, with a reason a person can act on — and preview ends as it began."""

import time

import pytest

from rollout.models import AuditEntry, ConfigChange, DesiredConfig, PreviewRun
from rollout.services import preview as preview_suite
from tests.preview.conftest import B2A, desired_settings, kv_settings, outcomes, run_now

pytestmark = pytest.mark.django_db

ALL_CHECKS = {
    "qa_structure",
    "sticky_native",
    "sticky_proxy",
    "header_override",
    "emergency_proxy",
    "rate_limit",
}


def assert_preview_as_before(edge, preview_adopted, version_before):
    desired = DesiredConfig.objects.get(environment=preview_adopted)
    assert desired.settings == B2A
    assert desired.version == version_before + 2, "one emergency stop, one restore"
    assert kv_settings(edge) == B2A
    restore = ConfigChange.objects.get(environment=preview_adopted, version=desired.version)
    assert restore.kind == "lift_emergency" and restore.state == "in_effect"
    assert restore.requested_by_system == "preview-suite"


def test_the_full_suite_passes_on_a_healthy_edge(edge, preview_adopted, release_manager):
    version_before = DesiredConfig.objects.get(environment=preview_adopted).version
    run = run_now(preview_adopted, release_manager)

    assert run.state == "passed", [(c.name, c.reason) for c in run.checks.all()]
    assert outcomes(run) == dict.fromkeys(ALL_CHECKS, "passed")
    assert run.expected == {**B2A.as_dict(), "version": version_before}
    assert run.restore_outcome == "restored" and not run.restore_pending
    assert_preview_as_before(edge, preview_adopted, version_before)

    checks = {check.name: check for check in run.checks.all()}
    qa = checks["qa_structure"]
    assert qa.evidence["status_line"] == "HTTP/1.1 200 OK"
    headers = dict((name.lower(), value) for name, value in qa.evidence["headers"])
    assert headers["x-pix-canary"].startswith("1;tag=B2a;cohort=")
    assert "SameSite=None" in headers["set-cookie"]
    assert '"environment": "preview"' in qa.evidence["body_excerpt"]
    # The monitoring token is named, never recorded.
    assert qa.evidence["request"]["monitoring_headers"] == ["X-Monitoring-Token"]
    assert "preview-suite-monitoring-token" not in str(run.checks.values_list("evidence"))
    assert checks["sticky_native"].note == "cohort=native;reason=cookie"
    assert checks["sticky_proxy"].note == "cohort=proxy;reason=cookie"
    assert checks["header_override"].note == "cohort=native;reason=header"
    emergency = checks["emergency_proxy"]
    assert emergency.note.startswith("100% proxy (cohort=proxy;reason=emergency)")
    assert "restored 10%, tag B2a" in emergency.note
    assert emergency.evidence["restore"]["outcome"] == "restored"
    rate = checks["rate_limit"]
    assert rate.evidence["statuses"] == [200] * 10 + [429, 429]
    assert rate.evidence["request"]["monitoring_headers"] == []
    assert rate.note.startswith("429 after 10 requests")
    assert all(check.duration_ms is not None for check in checks.values())

    # The emergency stop and the restore went the normal, audited way.
    actions = list(
        AuditEntry.objects.filter(environment=preview_adopted, actor_label="preview-suite")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions.index("config.emergency_stop") < actions.index("preview_suite.restored")
    assert actions.index("preview_suite.restored") < actions.index("preview_suite.passed")
    assert "config.lift_emergency" in actions


BREAKERS = [
    pytest.param(
        {"ignore_sticky": {"preview": True}},
        {"sticky_native", "sticky_proxy"},
        "the edge ignored the _canary_cohort",
        id="stickiness-ignored",
    ),
    pytest.param(
        {"ignore_header_override": {"preview": True}},
        {"header_override"},
        "got cohort=",
        id="header-override-ignored",
    ),
    pytest.param(
        {"ignore_emergency": {"preview": True}},
        {"emergency_proxy"},
        "the edge reports emergency_proxy=true but did not route by it",
        id="emergency-ignored",
    ),
    pytest.param({"rate_limit": 0}, {"rate_limit"}, "the edge does not rate-limit", id="no-limit"),
    pytest.param(
        {"health": {"preview": {"database": "connection timeout"}}},
        {"qa_structure"},
        "database reports error: connection timeout",
        id="health-component-failing",
    ),
    pytest.param(
        {"cookie_attributes": {"preview": "Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"}},
        {"qa_structure"},
        "the _canary_cohort cookie has SameSite=Lax, expected SameSite=None",
        id="cookie-samesite-lax",
    ),
    pytest.param(
        {"cookie_attributes": {"preview": "Max-Age=86400; Path=/; Secure; SameSite=None"}},
        {"qa_structure"},
        "the _canary_cohort cookie is not HttpOnly",
        id="cookie-not-httponly",
    ),
]


@pytest.mark.parametrize(("knobs", "failing", "reason"), BREAKERS)
def test_a_broken_behaviour_fails_exactly_its_check(
    edge, preview_adopted, release_manager, knobs, failing, reason
):
    version_before = DesiredConfig.objects.get(environment=preview_adopted).version
    edge.knobs(**knobs)
    run = run_now(preview_adopted, release_manager)

    assert run.state == "failed"
    states = outcomes(run)
    assert {name for name, state in states.items() if state == "failed"} == failing
    assert {name for name, state in states.items() if state == "passed"} == ALL_CHECKS - failing
    for check in run.checks.filter(name__in=failing):
        assert reason in check.reason, check.reason
    # Whatever failed, the emergency check restored preview.
    assert_preview_as_before(edge, preview_adopted, version_before)


def test_the_ignored_emergency_flag_is_still_restored_with_evidence(
    edge, preview_adopted, release_manager
):
    edge.knobs(ignore_emergency={"preview": True})
    run = run_now(preview_adopted, release_manager)
    emergency = run.checks.get(name="emergency_proxy")
    assert emergency.reason.startswith(
        "got cohort=proxy;reason=sampled"
    ) or emergency.reason.startswith("got cohort=native;reason=sampled")
    assert "restored 10%, tag B2a" in emergency.reason
    assert emergency.evidence["emergency_change"]["state"] == "in_effect"
    assert '"emergency_proxy": true' in emergency.evidence["body_excerpt"]


def test_the_suite_is_bounded_in_time(edge, preview_adopted, release_manager, settings):
    settings.PREVIEW_SUITE_TIMEOUT_SECONDS = 1.5
    edge.knobs(latency_ms={"preview": 400})
    started = time.monotonic()
    run = run_now(preview_adopted, release_manager)
    assert time.monotonic() - started < 4
    states = outcomes(run)
    assert states["rate_limit"] == "failed"
    assert states["emergency_proxy"] == "failed"
    assert "1.5s" in run.checks.get(name="emergency_proxy").reason
    # Out of time before the emergency check: preview was never touched.
    assert run.emergency_version is None and not run.restore_pending
    assert desired_settings(preview_adopted) == B2A and kv_settings(edge) == B2A


def test_an_active_emergency_stop_is_left_alone(edge, preview_adopted, release_manager):
    from rollout.services import controls
    from tests.preview.conftest import settle

    stop = controls.emergency_stop(
        environment=preview_adopted, reason="incident", actor=release_manager
    )
    settle(stop)
    run = run_now(preview_adopted, release_manager)
    emergency = run.checks.get(name="emergency_proxy")
    assert emergency.state == "failed" and "already active on preview" in emergency.reason
    assert run.checks.get(name="qa_structure").state == "failed"
    desired = DesiredConfig.objects.get(environment=preview_adopted)
    assert desired.emergency_proxy and desired.version == stop.version


def test_a_person_who_acted_meanwhile_wins_over_the_restore(edge, preview_adopted, release_manager):
    """The restore only puts the config back while it is still the suite's emergency stop."""
    from rollout.services import controls

    run = preview_suite.create_run(
        environment=preview_adopted, build="b1", started_by=release_manager
    )
    before = DesiredConfig.objects.get(environment=preview_adopted)
    stop = controls.emergency_stop(
        environment=preview_adopted, reason="suite", system="preview-suite"
    )
    PreviewRun.objects.filter(pk=run.pk).update(
        state="running",
        restore_pending=True,
        restore_settings=before.settings.as_dict(),
        restore_from_version=before.version,
        emergency_version=stop.version,
    )
    # Meanwhile a person lifts the stop and lowers the percent.
    lifted = controls.lift_emergency(
        environment=preview_adopted,
        reason="done",
        expected_version=stop.version,
        actor=release_manager,
    )
    restore = preview_suite.restore_after_emergency(run.pk)
    assert restore.outcome == "overtaken"
    assert f"moved on to version {lifted.version}" in restore.note and "rita" in restore.note
    desired = DesiredConfig.objects.get(environment=preview_adopted)
    assert desired.version == lifted.version, "the suite wrote nothing over the person's change"
    run.refresh_from_db()
    assert not run.restore_pending and run.restore_outcome == "overtaken"
    assert AuditEntry.objects.filter(action="preview_suite.restore_skipped").exists()
    assert preview_suite.restore_after_emergency(run.pk) is None, "nothing left to do"
