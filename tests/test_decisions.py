"""Phase windows, check-ins, sign-off rules and what a signed decision does."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.kv_value import CanarySettings
from metrics.models import MinuteBucket
from rollout.models import (
    AuditEntry,
    CheckIn,
    ConfigChange,
    Decision,
    DesiredConfig,
    Phase,
    PhaseRun,
    PostMortem,
    Rollout,
    Signature,
)
from rollout.permissions import Refused
from rollout.services import controls, phases, signoff
from rollout.services.evidence import build
from tests.conftest import client_for, htmx_client_for, make_environment
from tests.support.changes import change_config, first_config
from tests.support.rollouts import (
    NOW,
    attest_all,
    b2b_request,
    make_production_at_b2a,
    observing,
    plan_for,
    sign,
)

pytestmark = pytest.mark.django_db

# --- the window -------------------------------------------------------------------------------


def test_window_counts_from_in_effect_not_from_the_click(production_at_b2a, release_manager):
    rollout = phases.ensure_rollout(production_at_b2a, person=release_manager, now=NOW)
    change = ConfigChange.objects.create(
        environment=production_at_b2a,
        version=4,
        kind="phase_start",
        requested_by=release_manager,
        reason="start B2a",
        after={"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
    )
    phase = Phase.objects.get(tag="B2a")
    run = phases.record_phase_start(
        environment=production_at_b2a, phase=phase, result=change, person=release_manager, now=NOW
    )
    phases.advance(rollout, now=NOW + timedelta(minutes=5))
    run.refresh_from_db()
    assert run.state == PhaseRun.State.WAITING and run.window_ends_at is None

    in_effect = NOW + timedelta(minutes=7)
    ConfigChange.objects.filter(pk=change.pk).update(state="in_effect", in_effect_at=in_effect)
    rollout = phases.advance(rollout, now=NOW + timedelta(minutes=8))
    run.refresh_from_db()
    assert rollout.state == Rollout.State.OBSERVING
    assert run.in_effect_at == in_effect
    assert run.window_ends_at == in_effect + timedelta(hours=24)
    labels = list(run.check_ins.values_list("label", flat=True))
    assert labels == ["T+0", "T+30 min", "T+2 h", "T+6 h", "T+12 h", "T+24 h"]

    phases.advance(rollout, now=in_effect + timedelta(hours=23, minutes=59))
    assert Rollout.objects.get(pk=rollout.pk).state == Rollout.State.OBSERVING
    phases.advance(rollout, now=in_effect + timedelta(hours=24))
    assert Rollout.objects.get(pk=rollout.pk).state == Rollout.State.DECISION_DUE
    assert PhaseRun.objects.get(pk=run.pk).state == PhaseRun.State.DECISION_DUE
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"rollout.created", "phase.started", "rollout.observing", "rollout.decision_due"} <= (
        actions
    )


def test_a_rejected_start_cancels_the_window(production_at_b2a, release_manager, tech_lead):
    from rollout.models import PercentRequest

    phases.ensure_rollout(production_at_b2a, person=release_manager, now=NOW)
    request = b2b_request(production_at_b2a, release_manager)
    run = phases.record_phase_start(
        environment=production_at_b2a,
        phase=Phase.objects.get(tag="B2b"),
        result=request,
        person=release_manager,
        now=NOW,
    )
    request.decide(state=PercentRequest.State.REJECTED, by=tech_lead, note="not today")
    phases.advance(run.rollout, now=NOW)
    assert PhaseRun.objects.get(pk=run.pk).state == PhaseRun.State.CANCELLED


def test_no_next_phase_starts_while_a_window_is_open(production_at_b2a):
    observing(production_at_b2a, hours_ago=2)
    assert "under observation" in phases.start_refusal(production_at_b2a)


def test_emergency_stop_marks_the_phase_incident_hit(production_at_b2a, devops):
    from rollout.services import controls

    run = observing(production_at_b2a, hours_ago=3)
    controls.emergency_stop(environment=production_at_b2a, reason="5xx spike", actor=devops)
    run.refresh_from_db()
    assert run.incident_hit
    assert AuditEntry.objects.filter(action="phase.incident_hit").count() == 1


def test_a_rule_pressing_the_stop_marks_the_phase_too(production_at_b2a):
    from rollout.services import controls

    run = observing(production_at_b2a, hours_ago=3)
    controls.emergency_stop(
        environment=production_at_b2a, reason="native 5xx 4%", system="rule:native-5xx-critical"
    )
    run.refresh_from_db()
    assert run.incident_hit
    entry = AuditEntry.objects.get(action="phase.incident_hit")
    assert entry.actor_label == "rule:native-5xx-critical"


# --- check-ins --------------------------------------------------------------------------------


def test_check_ins_acknowledged_late_and_missed(production_at_b2a, release_manager):
    run = observing(production_at_b2a, hours_ago=3)
    first, second, third = run.check_ins.all()[:3]
    assert first.status(NOW) == "missed"  # T+0 slot closed at T+30 min
    assert third.status(NOW) == "due"  # T+2 h, open until T+6 h
    phases.acknowledge(third, person=release_manager, note="5xx 0%, p90 300 ms", now=NOW)
    phases.acknowledge(first, person=release_manager, note="late look", now=NOW)
    assert CheckIn.objects.get(pk=third.pk).status(NOW) == "acknowledged"
    assert CheckIn.objects.get(pk=first.pk).status(NOW) == "late"
    upcoming = run.check_ins.get(label="T+6 h")
    with pytest.raises(phases.TransitionRefused, match="not yet"):
        phases.acknowledge(upcoming, person=release_manager, note="early", now=NOW)
    with pytest.raises(phases.TransitionRefused, match="already acknowledged"):
        phases.acknowledge(third, person=release_manager, note="again", now=NOW)
    with pytest.raises(phases.TransitionRefused, match="what you checked"):
        phases.acknowledge(second, person=release_manager, note="  ", now=NOW)


def test_check_ins_whose_slots_closed_before_the_window_was_recorded_are_not_missed(
    production_at_b2a, release_manager, viewer
):
    """A window counted from an earlier moment (restarted from a build's time, the demo's
    backdated window): no one could have acknowledged a slot that had closed before its check-in
    existed, so it is elapsed, and the overview asks nothing for it."""
    from tests.test_overview_needs import overview_of

    now = timezone.now()
    rollout = Rollout.objects.create(
        plan=production_at_b2a.service.plan, environment=production_at_b2a, build="build-7"
    )
    run = PhaseRun.objects.create(
        rollout=rollout, phase=Phase.objects.get(tag="B2a"), started_at=now
    )
    phases.begin_window(rollout, run, in_effect_at=now - timedelta(hours=3), now=now)
    statuses = {check_in.label: check_in.status(now) for check_in in run.check_ins.all()}
    assert statuses == {
        "T+0": "elapsed",
        "T+30 min": "elapsed",
        "T+2 h": "due",
        "T+6 h": "upcoming",
        "T+12 h": "upcoming",
        "T+24 h": "upcoming",
    }
    card = overview_of(viewer, production_at_b2a)
    assert "was missed" not in card and "Check-in T+2 h is due" in card
    page = client_for(viewer).get(f"/phases/{run.public_id}/").content.decode()
    assert page.count('data-status="elapsed"') == 2 and 'data-status="missed"' not in page
    # Acknowledged afterwards, it is not late either: there was no time it could have been.
    first = phases.acknowledge(
        run.check_ins.get(label="T+0"), person=release_manager, note="looked now", now=now
    )
    assert first.status(now) == "acknowledged"


def test_check_in_page_forbidden_for_a_viewer(production_at_b2a, viewer):
    run = observing(production_at_b2a, hours_ago=1)
    check_in = run.check_ins.first()
    response = htmx_client_for(viewer).post(
        f"/check-ins/{check_in.public_id}/acknowledge/", {"note": "x"}
    )
    assert response.status_code == 403
    assert CheckIn.objects.get(pk=check_in.pk).acknowledged_at is None


def test_while_the_window_runs_no_outcome_is_preselected(production_at_b2a, tech_lead):
    """Only NO-GO can be signed early: the form offers it without choosing it for the signer,
    and never shows a disabled outcome as the chosen one."""
    import re

    run = observing(production_at_b2a, hours_ago=2)
    page = client_for(tech_lead).get(f"/phases/{run.public_id}/").content.decode()
    radios = re.findall(r'<input type="radio" name="outcome" value="(\w+)"([^>]*)>', page)
    assert [value for value, _ in radios] == ["go", "hold", "no_go"]
    assert not [value for value, attributes in radios if "checked" in attributes]
    assert [value for value, attributes in radios if "disabled" not in attributes] == ["no_go"]


def test_after_the_window_the_recommended_outcome_is_preselected(production_at_b2a, tech_lead):
    import re

    run = observing(production_at_b2a)
    recommended = build(run, NOW).outcome
    page = client_for(tech_lead).get(f"/phases/{run.public_id}/").content.decode()
    radios = re.findall(r'<input type="radio" name="outcome" value="(\w+)"([^>]*)>', page)
    assert [value for value, attributes in radios if "checked" in attributes] == [recommended]
    assert not [value for value, attributes in radios if "disabled" in attributes]


# --- sign-off rules ---------------------------------------------------------------------------


def test_go_needs_two_different_people_in_the_two_roles(
    production_at_b2a, tech_lead, devops, admin_user
):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    first = sign(run, tech_lead, "tech_lead")
    assert first.decision.state == Decision.State.OPEN
    with pytest.raises(signoff.SignRefused, match="signature is already given"):
        sign(run, admin_user, "tech_lead")
    with pytest.raises(signoff.SignRefused, match="already signed"):
        sign(run, tech_lead, "tech_lead")
    refusals = AuditEntry.objects.filter(action="decision.refused").count()
    assert refusals == 2


def test_same_person_cannot_fill_both_roles(production_at_b2a, admin_user, tech_lead):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    sign(run, admin_user, "tech_lead")
    with pytest.raises(signoff.SignRefused, match="already signed this decision"):
        sign(run, admin_user, "devops")
    assert Decision.objects.get().state == Decision.State.OPEN


def test_wrong_role_is_refused_with_403(production_at_b2a, tech_lead, release_manager):
    run = observing(production_at_b2a)
    digest = build(run, NOW).digest
    # A tech lead does not sign as DevOps.
    response = htmx_client_for(tech_lead).post(
        f"/phases/{run.public_id}/sign/",
        {"outcome": "go", "role": "devops", "evidence_digest": digest},
    )
    assert response.status_code == 403
    # A release manager has no signing permission at all.
    response = htmx_client_for(release_manager).post(
        f"/phases/{run.public_id}/sign/",
        {"outcome": "go", "role": "tech_lead", "evidence_digest": digest},
    )
    assert response.status_code == 403
    assert not Signature.objects.exists()
    assert AuditEntry.objects.filter(outcome="refused").count() == 2


def test_evidence_changed_between_signatures_invalidates_the_first(
    production_at_b2a, tech_lead, devops
):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    first = sign(run, tech_lead, "tech_lead")
    stale_digest = first.evidence_digest
    signed = build(run, NOW).document["figures"]["cohorts"]["native"]
    # Late logs for the window arrive before the second signature: 5xx where there were none.
    MinuteBucket.objects.filter(minute=run.in_effect_at, cohort="native").update(errors_5xx=4)
    with pytest.raises(signoff.EvidenceChanged):
        sign(run, devops, "devops", digest=stale_digest)
    second = sign(run, devops, "devops")
    now = build(run, NOW).document["figures"]["cohorts"]["native"]
    first.refresh_from_db()
    assert first.invalidated_at is not None
    assert "evidence changed before the second signature" in first.invalidated_reason
    rate = f"native 5xx rate {signed['error_percent']:g}% → {now['error_percent']:g}%"
    assert rate in first.invalidated_reason
    assert f"native 5xx responses 0 → {now['errors_5xx']:,}" in first.invalidated_reason
    assert "native requests" not in first.invalidated_reason  # only what changed is named
    decision = second.decision
    decision.refresh_from_db()
    assert decision.state == Decision.State.OPEN  # only one valid signature now
    assert decision.evidence_digest == second.evidence_digest
    page = client_for(devops).get(f"/phases/{run.public_id}/").content.decode()
    assert "no longer counts" in page and rate in page


def test_logs_arriving_with_the_same_figures_leave_the_first_signature_valid(
    production_at_b2a, tech_lead, devops
):

    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    end = run.window_ends_at.replace(second=0, microsecond=0)
    source = logs_through(production_at_b2a, end - timedelta(seconds=30))
    first = sign(run, tech_lead, "tech_lead")
    # The last Logpush file arrives: the logs are complete, and not one figure moved.
    source.newest_log_at = end + timedelta(seconds=12)
    source.save()
    assert build(run, NOW).document["window"]["logs_complete"] is True
    second = sign(run, devops, "devops", digest=first.evidence_digest)
    first.refresh_from_db()
    assert first.invalidated_at is None
    assert second.evidence_digest == first.evidence_digest
    decision = Decision.objects.get()
    assert decision.state == Decision.State.EFFECTIVE
    assert not AuditEntry.objects.filter(action="decision.signature_invalidated").exists()


def logs_through(environment, newest):
    """The environment's Logpush source, whose newest log is from ``newest``."""
    from metrics.models import LogSource

    return LogSource.objects.create(
        environment=environment, kind="directory", directory="/srv/logs", newest_log_at=newest
    )


def test_signing_before_the_window_ends_is_refused_except_no_go(
    production_at_b2a, tech_lead, devops
):
    run = observing(production_at_b2a, hours_ago=3)
    with pytest.raises(signoff.SignRefused, match="only NO-GO"):
        sign(run, tech_lead, "tech_lead", outcome="go")
    with pytest.raises(signoff.SignRefused, match="only NO-GO"):
        sign(run, tech_lead, "tech_lead", outcome="hold")
    sign(run, tech_lead, "tech_lead", outcome="no_go", justification="upload errors seen")
    sign(run, devops, "devops", outcome="no_go", justification="agreed")
    decision = Decision.objects.get()
    assert decision.state == Decision.State.EFFECTIVE and decision.early


def test_signing_against_the_recommendation_needs_a_justification(
    production_at_b2a, tech_lead, devops
):
    run = observing(production_at_b2a)  # attestations missing: recommendation HOLD
    assert build(run, NOW).outcome == "hold"
    with pytest.raises(signoff.SignRefused, match="against the recommendation"):
        sign(run, tech_lead, "tech_lead", outcome="go")
    sign(run, tech_lead, "tech_lead", outcome="go", justification="team agreed in the call")
    decision = Decision.objects.get()
    assert decision.against_recommendation and decision.recommendation == "hold"


def test_an_open_decision_of_another_outcome_must_be_withdrawn_first(
    production_at_b2a, tech_lead, devops
):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    sign(run, tech_lead, "tech_lead", outcome="go")
    with pytest.raises(signoff.SignRefused, match="withdraw it first"):
        sign(run, devops, "devops", outcome="hold", justification="want more data")
    signoff.withdraw(
        decision=Decision.objects.get(), person=devops, note="need another day", now=NOW
    )
    sign(run, devops, "devops", outcome="hold", justification="want more data")
    assert Decision.objects.filter(state="open", outcome="hold").count() == 1


# --- what a decision does ---------------------------------------------------------------------


def test_no_go_rolls_back_at_once_and_opens_a_post_mortem(production_at_b2a, tech_lead, devops):
    run = observing(production_at_b2a, healthy=False)
    assert build(run, NOW).outcome == "no_go"
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    sign(run, devops, "devops", outcome="no_go")
    rollback = ConfigChange.objects.get(kind="rollback")
    assert rollback.after["canary_percent"] == 0 and rollback.requested_by == devops
    desired = DesiredConfig.objects.get(environment=production_at_b2a)
    assert desired.canary_percent == 0
    rollout = Rollout.objects.get()
    assert rollout.state == Rollout.State.ABORTED
    post_mortem = PostMortem.objects.get()
    assert "B2a" in post_mortem.timeline and "decision.signed" in post_mortem.timeline
    assert Decision.objects.get().result_change == rollback


def test_a_no_go_rolls_back_through_the_rollback_control(
    production_at_b2a, tech_lead, devops, monkeypatch
):
    """Signed second by a tech lead, who holds no rollback permission: the decision's two
    signatures authorise it, recorded like a person's rollback."""
    calls, rollback = [], controls.rollback
    monkeypatch.setattr(controls, "rollback", lambda **call: calls.append(call) or rollback(**call))
    run = observing(production_at_b2a, healthy=False)
    sign(run, devops, "devops", outcome="no_go")
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    assert [call["decision"] for call in calls] == [Decision.objects.get()]
    rollback = ConfigChange.objects.get(kind=ConfigChange.Kind.ROLLBACK)
    assert rollback.requested_by == tech_lead and rollback.after["canary_percent"] == 0
    entry = AuditEntry.objects.get(action="config.rollback")
    assert entry.actor == tech_lead and f"version {rollback.version}" in entry.detail


def test_a_no_go_leaves_an_active_emergency_stop_on(production_at_b2a, devops):
    """A person's rollback turns the stop off; a NO-GO's does not (lifting it is its own
    control), so the two plans differ only in the emergency flag."""
    change_config(
        production_at_b2a,
        CanarySettings(5, "B2a", True),
        kind=ConfigChange.Kind.EMERGENCY_STOP,
        reason="stopped, then lowered",
        expected_version=None,
    )
    decision = Decision(outcome=Decision.Outcome.NO_GO)
    by_person = controls.plan_rollback(environment=production_at_b2a, actor=devops)
    by_decision = controls.plan_rollback(
        environment=production_at_b2a, actor=devops, decision=decision
    )
    assert by_person.target == CanarySettings(0, "B2a", False)
    assert by_decision.target == CanarySettings(0, "B2a", True)


def test_sign_and_withdraw_refuse_outside_a_request_once(production_at_b2a, tech_lead, viewer):
    """Called without a request (an API, a command): nothing is written and the refusal is
    audited exactly once, by the service."""
    run = observing(production_at_b2a, healthy=False)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    decision = Decision.objects.get()
    before = AuditEntry.objects.count()
    with pytest.raises(Refused):
        sign(run, viewer, "devops", outcome="no_go")
    with pytest.raises(Refused):
        signoff.withdraw(decision=decision, person=viewer, note="no", now=NOW)
    decision.refresh_from_db()
    assert decision.state == Decision.State.OPEN
    assert Signature.objects.filter(invalidated_at__isnull=True).count() == 1
    written = AuditEntry.objects.order_by("id")[before:]
    assert [(entry.action, entry.actor) for entry in written] == [
        ("permission.denied", viewer),
        ("permission.denied", viewer),
    ]


def test_a_signer_in_a_role_they_do_not_hold_is_refused_once(production_at_b2a, devops):
    run = observing(production_at_b2a, fill_logs=False)
    with pytest.raises(Refused, match="role Tech lead"):
        sign(run, devops, "tech_lead", outcome="no_go")
    assert not Decision.objects.exists()
    refusals = AuditEntry.objects.filter(outcome=AuditEntry.Outcome.REFUSED)
    assert [(entry.action, entry.actor) for entry in refusals] == [("permission.denied", devops)]


def test_hold_opens_a_new_window_of_the_same_phase(production_at_b2a, tech_lead, devops):
    run = observing(production_at_b2a, fill_logs=False)
    sign(run, tech_lead, "tech_lead", outcome="hold")
    sign(run, devops, "devops", outcome="hold")
    held = PhaseRun.objects.get(window_number=2)
    assert held.phase == run.phase and held.state == PhaseRun.State.OBSERVING
    assert held.in_effect_at == NOW and held.window_ends_at == NOW + timedelta(hours=24)
    assert Rollout.objects.get().state == Rollout.State.OBSERVING
    assert not ConfigChange.objects.exists()


def test_go_waits_for_the_next_phase_pre_flight(production_at_b2a, tech_lead, devops):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    sign(run, tech_lead, "tech_lead")
    sign(run, devops, "devops")
    rollout = Rollout.objects.get()
    assert rollout.state == Rollout.State.AWAITING_NEXT  # no preview suite passed in this test
    entry = AuditEntry.objects.get(action="decision.next_phase_waiting")
    assert "B2b" in entry.detail and "pre-flight" in entry.detail
    assert not ConfigChange.objects.filter(kind="phase_start").exists()
    assert not AuditEntry.objects.filter(action="preflight.start_refused").exists()


def test_go_after_the_last_phase_completes_the_rollout(production_at_b2a, tech_lead, devops):
    run = observing(production_at_b2a, phase_tag="B2c")
    attest_all(run, tech_lead)
    sign(run, tech_lead, "tech_lead")
    sign(run, devops, "devops")
    assert Rollout.objects.get().state == Rollout.State.COMPLETED


def test_go_is_refused_while_the_emergency_stop_is_active(production_at_b2a, tech_lead):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    DesiredConfig.objects.filter(environment=production_at_b2a).update(emergency_proxy=True)
    with pytest.raises(signoff.SignRefused, match="emergency stop is active"):
        sign(run, tech_lead, "tech_lead", justification="x")


# --- pages ------------------------------------------------------------------------------------


def test_sign_over_http_and_the_report(production_at_b2a, tech_lead, devops, viewer):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    for person, role in ((tech_lead, "tech_lead"), (devops, "devops")):
        client = htmx_client_for(person)
        page = client.get(f"/phases/{run.public_id}/")
        assert page.status_code == 200
        digest = build(run, timezone.now()).digest
        response = client.post(
            f"/phases/{run.public_id}/sign/",
            {"outcome": "go", "role": role, "evidence_digest": digest},
        )
        assert response.status_code == 200, response.content.decode()[:500]
    assert Decision.objects.get().state == Decision.State.EFFECTIVE
    report = client_for(viewer).get(f"/phases/{run.public_id}/report.md")
    text = report.content.decode()
    assert report.status_code == 200
    assert "| Error rate (5xx) | 0.00% |" in text
    assert "Tech lead: theo" in text and "DevOps: dana" in text
    assert "**GO**" in text
    html = client_for(viewer).get(f"/phases/{run.public_id}/report/").content.decode()
    assert "metrics-table" in html and "theo" in html
    history = client_for(viewer).get("/rollouts/").content.decode()
    assert "B2a" in history and "GO" in history


@pytest.mark.parametrize(
    "data, message",
    [
        ({"outcome": "maybe", "role": "tech_lead", "evidence_digest": "0" * 64}, "GO, HOLD"),
        ({"outcome": "go", "role": "boss", "evidence_digest": "0" * 64}, "tech lead or DevOps"),
        ({"outcome": "go", "role": "tech_lead", "evidence_digest": "xyz"}, "not readable"),
        ({"outcome": "go", "role": "tech_lead"}, "evidence you saw is missing"),
        (
            {
                "outcome": "go",
                "role": "tech_lead",
                "evidence_digest": "0" * 64,
                "justification": "j" * 4001,
            },
            "At most 4,000 characters (you entered 4,001).",
        ),
    ],
)
def test_bad_sign_forms_answer_422(production_at_b2a, tech_lead, data, message):
    run = observing(production_at_b2a)
    response = htmx_client_for(tech_lead).post(f"/phases/{run.public_id}/sign/", data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Signature.objects.exists()


def test_stale_digest_over_http_answers_409(production_at_b2a, tech_lead):
    run = observing(production_at_b2a)
    response = htmx_client_for(tech_lead).post(
        f"/phases/{run.public_id}/sign/",
        {"outcome": "go", "role": "tech_lead", "evidence_digest": "a" * 64},
    )
    assert response.status_code == 409
    assert "evidence changed" in response.content.decode()


def test_attest_forbidden_for_a_viewer_and_bad_values(production_at_b2a, viewer, tech_lead):
    run = observing(production_at_b2a)
    url = f"/phases/{run.public_id}/attest/"
    assert (
        htmx_client_for(viewer)
        .post(url, {"kind": "upload_flow", "value": "yes", "note": "ok"})
        .status_code
        == 403
    )
    client = htmx_client_for(tech_lead)
    assert (
        client.post(url, {"kind": "upload_flow", "value": "perhaps", "note": "x"}).status_code
        == 422
    )
    assert client.post(url, {"kind": "nonsense", "value": "yes", "note": "x"}).status_code == 422
    assert client.post(url, {"kind": "upload_flow", "value": "yes", "note": " "}).status_code == 422
    assert not run.attestations.exists()


def test_withdraw_and_post_mortem_forbidden_for_a_viewer(
    production_at_b2a, viewer, tech_lead, devops
):
    run = observing(production_at_b2a, healthy=False)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    decision = Decision.objects.get()
    assert (
        htmx_client_for(viewer)
        .post(f"/decisions/{decision.public_id}/withdraw/", {"note": "x"})
        .status_code
        == 403
    )
    sign(run, devops, "devops", outcome="no_go")
    post_mortem = PostMortem.objects.get()
    url = f"/post-mortems/{post_mortem.public_id}/"
    assert htmx_client_for(viewer).post(url, {"root_cause": "x"}).status_code == 403
    response = htmx_client_for(tech_lead).post(
        url,
        {
            "root_cause": "pool exhausted",
            "fix_plan": "raise pool",
            "rerollout_date": "tomorrow",
            "timeline": post_mortem.timeline,
        },
    )
    assert response.status_code == 422 and "YYYY-MM-DD" in response.content.decode()
    response = htmx_client_for(tech_lead).post(
        url,
        {
            "root_cause": "pool exhausted",
            "fix_plan": "raise pool",
            "rerollout_date": "2026-12-01",
            "owner": tech_lead.pk,
            "timeline": post_mortem.timeline,
        },
    )
    assert response.status_code == 200
    post_mortem.refresh_from_db()
    assert post_mortem.root_cause == "pool exhausted" and post_mortem.owner == tech_lead
    assert AuditEntry.objects.filter(action="postmortem.updated").exists()


# --- thresholds, links, pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"go_max_error_percent": "high"}, "must be a number"),
        ({"go_max_error_percent": -1}, "must be a number"),
        ({"go_max_error_percent": True}, "must be a number"),
        ({"no_such_threshold": 1}, "Unknown threshold"),
        ({"go_max_error_percent": 3.0}, "must not be above nogo_error_percent"),
        ({"confidence": 1.5}, "between 0 and 1"),
        (["go_max_error_percent", 1], "JSON object"),
    ],
)
def test_bad_decision_thresholds_are_refused_with_a_message(production_at_b2a, overrides, message):
    from django.core.exceptions import ValidationError

    plan = production_at_b2a.service.plan
    plan.decision_thresholds = overrides
    with pytest.raises(ValidationError, match=message):
        plan.full_clean()


def test_plan_thresholds_are_in_force_and_frozen_with_the_evidence(production_at_b2a, tech_lead):
    plan = production_at_b2a.service.plan
    plan.decision_thresholds = {"min_native_requests": 10_000_000}
    plan.full_clean()
    plan.save()
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    evidence = build(run, NOW)
    assert evidence.outcome == "hold"
    assert evidence.document["thresholds"]["min_native_requests"] == 10_000_000
    assert "too little native traffic" in " ".join(evidence.recommendation.reasons)


def test_audit_trail_links_to_phases_and_decisions(production_at_b2a, tech_lead, devops, viewer):
    run = observing(production_at_b2a, healthy=False)
    check_in = run.check_ins.last()
    phases.acknowledge(check_in, person=devops, note="5xx at 5%", now=NOW)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    sign(run, devops, "devops", outcome="no_go")
    decision = Decision.objects.get()
    client = htmx_client_for(viewer)
    page = client.get("/audit/").content.decode()
    assert f'href="/decisions/{decision.public_id}/"' in page
    assert f'href="/phases/{run.public_id}/"' in page
    assert f'href="/rollouts/{run.rollout.public_id}/"' in page
    redirect = client.get(f"/decisions/{decision.public_id}/")
    assert redirect.status_code == 302 and redirect["Location"] == f"/phases/{run.public_id}/"
    post_mortem = PostMortem.objects.get()
    page = client.get(f"/post-mortems/{post_mortem.public_id}/").content.decode()
    assert "<form" not in page.split("post-mortem")[-1] and "Root cause" in page


def test_environment_page_shows_the_running_phase(production_at_b2a, viewer):
    run = observing(production_at_b2a, hours_ago=2)
    page = client_for(viewer).get(f"/environments/{production_at_b2a.public_id}/").content.decode()
    assert f'href="/phases/{run.public_id}/"' in page and "phase running" in page


def test_viewer_sees_the_evidence_but_no_forms(production_at_b2a, viewer):
    run = observing(production_at_b2a)
    page = client_for(viewer).get(f"/phases/{run.public_id}/").content.decode()
    assert 'id="criteria"' in page and "Recommendation" in page
    assert 'id="sign-form"' not in page and 'id="attest-form"' not in page
    assert "Acknowledge" not in page


def test_evidence_check_answers_204_until_the_evidence_changes(
    production_at_b2a, viewer, tech_lead
):
    from rollout.services.evidence import fingerprint

    run = observing(production_at_b2a)
    client = htmx_client_for(viewer)
    page = client.get(f"/phases/{run.public_id}/").content.decode()
    seen = fingerprint(run, timezone.now())
    assert f"?seen={seen}" in page
    url = f"/phases/{run.public_id}/evidence-check/?seen={seen}"
    assert client.get(url).status_code == 204
    MinuteBucket.objects.filter(minute=run.in_effect_at, cohort="native").update(errors_5xx=5)
    response = client.get(url)
    assert response.status_code == 200 and "evidence-changed" in response.content.decode()


def test_the_page_says_when_the_windows_last_logs_have_not_arrived(production_at_b2a, viewer):
    from rollout.services.evidence import what_changed

    run = observing(production_at_b2a)
    end = run.window_ends_at.replace(second=0, microsecond=0)
    source = logs_through(production_at_b2a, end - timedelta(minutes=7))
    client = htmx_client_for(viewer)
    waiting, digest_waiting = build(run, NOW).document, build(run, NOW).digest
    assert waiting["window"]["logs_complete"] is False
    page = client.get(f"/phases/{run.public_id}/").content.decode()
    shown = timezone.localtime(end - timedelta(minutes=7)).strftime("%Y-%m-%d %H:%M")
    assert 'id="logs-pending"' in page
    assert re.search(rf"Logs have arrived up to <time [^>]*>{shown} ", page)

    source.newest_log_at = end + timedelta(minutes=3)
    source.save()
    arrived = build(run, NOW).document
    assert arrived["window"]["logs_complete"] is True
    assert arrived["window"]["logs_through"] == end.isoformat()  # never past the window's end
    assert 'id="logs-pending"' not in client.get(f"/phases/{run.public_id}/").content.decode()
    # How far the logs arrived is bookkeeping: with the same figures, the same evidence.
    assert what_changed(waiting, arrived) == "nothing a signer sees"
    assert build(run, NOW).digest == digest_waiting
    report = client.get(f"/phases/{run.public_id}/report.md").content.decode()
    assert f"**Logs received through:** {end.isoformat()}" in report


@pytest.mark.parametrize(
    "change", ["late bucket", "refolded bucket", "attestation", "incident", "logs arriving"]
)
def test_the_fingerprint_moves_with_the_evidence(production_at_b2a, tech_lead, devops, change):
    from rollout.services import controls
    from rollout.services.evidence import fingerprint

    run = observing(production_at_b2a)
    before = fingerprint(run, NOW), build(run, NOW).digest
    if change == "late bucket":
        MinuteBucket.objects.filter(minute=run.in_effect_at, cohort="proxy").delete()
    elif change == "refolded bucket":
        MinuteBucket.objects.filter(minute=run.in_effect_at, cohort="native").update(
            updated_at=timezone.now()
        )
    elif change == "attestation":
        signoff.attest(
            run=run, kind="team_agrees", value=True, note="ok", person=tech_lead, now=NOW
        )
    elif change == "logs arriving":
        logs_through(production_at_b2a, NOW)
    else:
        controls.emergency_stop(environment=production_at_b2a, reason="spike", actor=devops)
    # The page's poll notices logs arriving (it says whether the logs are complete), but what
    # a signer signs does not move with them.
    assert fingerprint(run, NOW) != before[0]
    if change in ("late bucket", "attestation"):
        assert build(run, NOW).digest != before[1]
    if change == "logs arriving":
        assert build(run, NOW).digest == before[1]
    assert fingerprint(run, NOW) == fingerprint(run, NOW)


def test_demo_rollout_seed_backdates_a_window_with_a_day_of_traffic(edge, tmp_path):
    from django.core.management import call_command

    from integrations.kv_value import CanarySettings
    from rollout import kv_writer

    production = make_environment(edge)
    plan_for(production)
    change = first_config(production, CanarySettings(10, "B2a", False), reason="demo")
    kv_writer.reconcile(production.pk)
    kv_writer.confirm(change.pk)
    call_command("seed_demo_rollout", edge_url=edge.base_url, directory=str(tmp_path), wait=10)
    run = PhaseRun.objects.get()
    assert run.state == PhaseRun.State.OBSERVING and run.phase.tag == "B2a"
    left = run.window_ends_at - timezone.now()
    assert timedelta(minutes=9) < left <= timedelta(minutes=10)
    written = list((tmp_path / "production").rglob("*.gz"))
    assert len(written) == 2 * (24 * 60 - 10) // 5
    assert AuditEntry.objects.filter(detail__startswith="demo data").exists()
    # Seeding twice changes nothing.
    call_command("seed_demo_rollout", edge_url=edge.base_url, directory=str(tmp_path))
    assert Rollout.objects.count() == 1


def test_decision_due_and_decision_are_announced_in_deployments(
    production_at_b2a, tech_lead, devops, settings
):
    from outbox.models import Notification

    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/hooks/deployments"
    run = observing(production_at_b2a, healthy=False)
    phases.advance(run.rollout, now=NOW)
    phases.advance(run.rollout, now=NOW)  # announced once
    due = Notification.objects.get(related_object__endswith=":decision_due")
    assert "decision is due" in due.subject and str(run.public_id) in json_text(due.payload)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    sign(run, devops, "devops", outcome="no_go")
    effective = Notification.objects.get(related_object__endswith=":effective")
    assert "NO-GO for B2a (10%) signed by theo and dana" in effective.subject
    assert "/report/" in json_text(effective.payload)


def test_the_overview_shows_each_environments_running_phase(production_at_b2a, viewer, settings):
    settings.LIVE_FRAGMENT_CACHE_SECONDS = 0
    client = htmx_client_for(viewer)

    def overview():
        return client.get("/", headers={"HX-Request": "true"}).content.decode()

    assert "rollout-line" not in overview()
    run = observing(production_at_b2a, hours_ago=2, fill_logs=False)
    shown = overview()
    assert f'href="/phases/{run.public_id}/"' in shown and "window until" in shown
    assert "decision is due" not in shown

    phases.advance(run.rollout, now=run.window_ends_at + timedelta(minutes=1))
    assert "the GO / NO-GO decision is due" in overview()


def test_a_check_in_falling_due_is_announced_once(production_at_b2a, release_manager, settings):
    from outbox.models import Notification

    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/hooks/deployments"
    run = observing(
        production_at_b2a, hours_ago=40 / 60, fill_logs=False
    )  # T+0 missed, T+30 min due
    phases.advance(run.rollout, now=NOW)
    phases.advance(run.rollout, now=NOW)
    reminders = Notification.objects.filter(related_object__startswith="check-in:")
    assert [n.subject for n in reminders] == [
        f":alarm_clock: *{production_at_b2a}*: check-in T+30 min of B2a (10%) is due — "
        "First check-in: error rate, latency p50/p90"
    ]
    assert str(run.public_id) in json_text(reminders[0].payload)
    reminded = run.check_ins.exclude(reminded_at=None)
    assert [check_in.label for check_in in reminded] == ["T+30 min"]

    # The next one is reminded when it falls due, not before.
    phases.advance(run.rollout, now=NOW + timedelta(minutes=60))
    assert reminders.all().count() == 1
    phases.advance(run.rollout, now=NOW + timedelta(minutes=81))
    assert reminders.all().count() == 2
    assert "check-in T+2 h" in reminders.order_by("id").last().subject


def test_an_acknowledged_check_in_is_not_announced(production_at_b2a, release_manager, settings):
    from outbox.models import Notification

    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/hooks/deployments"
    run = observing(production_at_b2a, hours_ago=40 / 60, fill_logs=False)
    check_in = run.check_ins.get(label="T+30 min")
    phases.acknowledge(check_in, person=release_manager, note="5xx flat", now=NOW)
    phases.advance(run.rollout, now=NOW)
    assert not Notification.objects.filter(related_object__startswith="check-in:").exists()


def json_text(payload) -> str:
    import json

    return json.dumps(payload)


def test_begin_and_abort_a_rollout(production_at_b2a, release_manager, viewer):
    url = f"/environments/{production_at_b2a.public_id}/rollout/begin/"
    assert htmx_client_for(viewer).post(url).status_code == 403
    client = htmx_client_for(release_manager)
    response = client.post(url)
    assert response.status_code == 200 and "Draft" in response.content.decode()
    rollout = Rollout.objects.get()
    assert rollout.state == Rollout.State.DRAFT  # no preview suite has passed
    again = client.post(url)
    assert again.status_code == 409 and "already running" in again.content.decode()
    abort_url = f"/rollouts/{rollout.public_id}/abort/"
    assert htmx_client_for(viewer).post(abort_url, {"note": "x"}).status_code == 403
    assert client.post(abort_url, {"note": "  "}).status_code == 422
    assert client.post(abort_url, {"note": "wrong build"}).status_code == 200
    assert Rollout.objects.get().state == Rollout.State.ABORTED
    assert AuditEntry.objects.filter(action="rollout.aborted", reason="wrong build").exists()


def test_a_running_window_is_not_aborted(production_at_b2a, release_manager):
    run = observing(production_at_b2a, hours_ago=2)
    response = htmx_client_for(release_manager).post(
        f"/rollouts/{run.rollout.public_id}/abort/", {"note": "bored"}
    )
    assert response.status_code == 409 and "signed decision" in response.content.decode()
    assert Rollout.objects.get().state == Rollout.State.OBSERVING


@pytest.mark.django_db(transaction=True)
def test_two_signers_at_once_take_effect_exactly_once(edge, tech_lead, devops):
    """Both signatures posted at the same moment: the phase row lock serialises them, so the
    NO-GO takes effect once — one rollback, one post-mortem."""
    import threading

    from django.db import connection

    environment = make_production_at_b2a(edge)
    run = observing(environment, healthy=False)
    digest = build(run, NOW).digest
    barrier = threading.Barrier(2)
    errors = []

    def sign_as(person, role):
        try:
            barrier.wait()
            sign(run, person, role, outcome="no_go", digest=digest)
        except Exception as exc:  # recorded and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sign_as, args=(tech_lead, "tech_lead")),
        threading.Thread(target=sign_as, args=(devops, "devops")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert Decision.objects.filter(state="effective").count() == 1
    assert Signature.objects.filter(invalidated_at__isnull=True).count() == 2
    assert ConfigChange.objects.filter(kind="rollback").count() == 1
    assert PostMortem.objects.count() == 1
    assert AuditEntry.objects.filter(action="decision.effective").count() == 1


def test_check_in_acknowledgement_over_http_and_its_bad_inputs(production_at_b2a, release_manager):
    import uuid

    run = observing(production_at_b2a, hours_ago=3)
    client = htmx_client_for(release_manager)
    due = run.check_ins.get(label="T+2 h")
    upcoming = run.check_ins.get(label="T+6 h")
    url = "/check-ins/{}/acknowledge/"
    empty = client.post(url.format(due.public_id), {"note": "   "})
    assert empty.status_code == 422 and "short note" in empty.content.decode()
    long = client.post(url.format(due.public_id), {"note": "x" * 1001})
    assert long.status_code == 422 and "1,000" in long.content.decode()
    early = client.post(url.format(upcoming.public_id), {"note": "looked"})
    assert early.status_code == 409 and "not yet" in early.content.decode()
    assert client.post(url.format(uuid.uuid4()), {"note": "x"}).status_code == 404
    assert client.get(url.format(due.public_id)).status_code == 405
    done = client.post(url.format(due.public_id), {"note": "5xx 0.1%, p90 280 ms"})
    assert done.status_code == 200 and "T+2 h acknowledged" in done.content.decode()
    assert CheckIn.objects.get(pk=due.pk).acknowledged_by == release_manager
    assert AuditEntry.objects.filter(action="phase.check_in").count() == 1
    assert AuditEntry.objects.filter(action="decision.refused").count() == 1  # the early one


def test_what_changed_names_each_item_from_what_to_what(production_at_b2a, tech_lead, devops):
    from rollout.services.evidence import what_changed

    run = observing(production_at_b2a)
    signoff.attest(run=run, kind="upload_flow", value=True, note="ok", person=tech_lead, now=NOW)
    before = build(run, NOW).document
    signoff.attest(run=run, kind="team_agrees", value=True, note="ok", person=devops, now=NOW)
    controls.emergency_stop(environment=production_at_b2a, reason="spike", actor=devops)
    stop = ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP)
    stop.update(requested_at=NOW - timedelta(hours=1, minutes=30))  # inside the window
    plan = production_at_b2a.service.plan
    plan.decision_thresholds = {"error_excess_points": 0.8}
    plan.save()
    run = PhaseRun.objects.get(pk=run.pk)
    words = what_changed(before, build(run, NOW).document)

    assert f"attestation 'team agrees' added (yes by {devops.get_username()})" in words
    assert "incident added: emergency stop at " in words and "spike" in words
    assert "threshold error_excess_points 0.5 → 0.8" in words
    assert "recommendation HOLD → NO-GO" in words
    assert "upload flow" not in words  # unchanged items are not named


def test_the_teams_own_threshold_is_edited_in_the_plan_validated_and_audited(
    production_at_b2a, admin_user
):
    plan = production_at_b2a.service.plan
    phase_rows = list(plan.phases.order_by("position"))
    url = f"/admin/rollout/rolloutplan/{plan.pk}/change/"
    client = client_for(admin_user)

    def save(thresholds):
        form = {
            "service": plan.service_id,
            "name": plan.name,
            "decision_thresholds": thresholds,
            "phases-TOTAL_FORMS": len(phase_rows),
            "phases-INITIAL_FORMS": len(phase_rows),
            "phases-MIN_NUM_FORMS": 0,
            "phases-MAX_NUM_FORMS": 1000,
        }
        for number, phase in enumerate(phase_rows):
            for field in ("id", "plan", "position", "tag", "percent", "min_observation"):
                value = getattr(phase, "pk" if field == "id" else field)
                form[f"phases-{number}-{field}"] = plan.pk if field == "plan" else value
        return client.post(url, form)

    refused = save('{"error_excess_points": -0.5}')
    assert refused.status_code == 200
    assert "error_excess_points must be a number ≥ 0, not -0.5." in refused.content.decode()
    assert not AuditEntry.objects.filter(action="plan.thresholds_changed").exists()

    assert save('{"error_excess_points": 0.8}').status_code == 302
    plan.refresh_from_db()
    assert plan.decision_thresholds == {"error_excess_points": 0.8}
    entry = AuditEntry.objects.get(action="plan.thresholds_changed")
    assert entry.after == {"error_excess_points": 0.8} and entry.actor == admin_user


def test_the_teams_own_rule_is_labelled_on_the_phase_page_and_the_report(
    production_at_b2a, viewer
):
    run = observing(production_at_b2a)
    client = client_for(viewer)
    page = client.get(f"/phases/{run.public_id}/").content.decode()
    row = re.search(r'<tr[^>]*data-criterion="native_vs_proxy_5xx".*?</tr>', page, re.S).group()
    assert "team's own rule" in row
    # The team's two rules (5xx against proxy, the build under the window) carry the label; the
    # runbook's criteria do not.
    assert page.count("team's own rule</span>") == 2
    report = client.get(f"/phases/{run.public_id}/report/").content.decode()
    assert "Native vs proxy 5xx <span class=\"badge team-rule\">team's own rule" in report
    markdown = client.get(f"/phases/{run.public_id}/report.md").content.decode()
    assert ": Native vs proxy 5xx (team's own rule, not in the runbook) — " in markdown


def _written_since(count):
    return [
        (entry.action, entry.actor, entry.outcome, entry.detail)
        for entry in AuditEntry.objects.order_by("id")[count:]
    ]


def test_a_refused_abort_outside_a_request_is_audited_once(production_at_b2a, release_manager):
    """Called without a request (an API, a command): the service audits the refusal, once, and
    writes nothing else."""
    run = observing(production_at_b2a, hours_ago=2)
    before = AuditEntry.objects.count()
    with pytest.raises(phases.TransitionRefused, match="signed decision") as refused:
        phases.abort(run.rollout, person=release_manager, reason="bored", now=NOW)
    assert _written_since(before) == [
        ("rollout.refused", release_manager, AuditEntry.Outcome.REFUSED, str(refused.value))
    ]
    assert Rollout.objects.get().state == Rollout.State.OBSERVING


def test_a_refused_begin_outside_a_request_is_audited_once(production_at_b2a, release_manager):
    phases.begin(production_at_b2a, person=release_manager, now=NOW)
    before = AuditEntry.objects.count()
    with pytest.raises(phases.TransitionRefused, match="already running"):
        phases.begin(production_at_b2a, person=release_manager, now=NOW)
    assert [entry[:3] for entry in _written_since(before)] == [
        ("rollout.refused", release_manager, AuditEntry.Outcome.REFUSED)
    ]
    assert Rollout.objects.count() == 1


def test_a_refused_check_in_outside_a_request_is_audited_once(production_at_b2a, release_manager):
    run = observing(production_at_b2a, hours_ago=3)
    upcoming = run.check_ins.get(label="T+6 h")
    before = AuditEntry.objects.count()
    with pytest.raises(phases.TransitionRefused, match="not yet") as refused:
        phases.acknowledge(upcoming, person=release_manager, note="looked", now=NOW)
    assert _written_since(before) == [
        ("decision.refused", release_manager, AuditEntry.Outcome.REFUSED, str(refused.value))
    ]
    assert AuditEntry.objects.order_by("id").last().object_id == str(run.public_id)
    assert CheckIn.objects.get(pk=upcoming.pk).acknowledged_at is None
