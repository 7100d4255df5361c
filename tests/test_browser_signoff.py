"""The GO / NO-GO sign-off in real Chromium, with two people in two browser contexts.

The phase window is built as in tests/test_decisions.py — B2a took effect 25 h ago, so its 24 h
window has ended, with healthy metrics in every minute — but from the time of the test itself,
since the live server judges the window against its own clock."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from metrics.models import MinuteBucket
from rollout.models import (
    AuditEntry,
    ConfigChange,
    Decision,
    Phase,
    PhaseRun,
    Rollout,
    Signature,
)
from rollout.services import phases, signoff
from rollout.services.evidence import build, fingerprint
from tests.support.rollouts import fill

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def run(production_at_b2a):
    """B2a in effect since 25 h ago: the window has ended, the metrics are healthy and no one
    has attested yet (so the recommendation is HOLD)."""
    now = timezone.now().replace(second=0, microsecond=0)
    in_effect = now - timedelta(hours=25)
    rollout = Rollout.objects.create(
        plan=production_at_b2a.service.plan,
        environment=production_at_b2a,
        build="build-7",
        state=Rollout.State.OBSERVING,
    )
    run = PhaseRun.objects.create(
        rollout=rollout,
        phase=Phase.objects.get(plan=rollout.plan, tag="B2a"),
        state=PhaseRun.State.WAITING,
        started_at=in_effect,
    )
    phases.begin_window(rollout, run, in_effect_at=in_effect, now=in_effect)
    run.refresh_from_db()
    fill(production_at_b2a, in_effect, run.window_ends_at)
    return run


def attest_all(run, person):
    for kind in ("upload_flow", "team_agrees"):
        signoff.attest(
            run=run, kind=kind, value=True, note="checked", person=person, now=timezone.now()
        )


def phase_url(live_server, run):
    return f"{live_server.url}/phases/{run.public_id}/"


def attest_on_page(page, kind_label, note):
    form = page.locator("#attest-form")
    form.get_by_label("Criterion").select_option(label=kind_label)
    form.get_by_label("Holds?").select_option("yes")
    form.get_by_label("Note").fill(note)
    form.get_by_role("button", name="Attest").click()


def sign_on_page(page, role_label, outcome_label="GO"):
    """Choose the outcome and role and click Sign; returns the HTTP status of the answer."""
    form = page.locator("#sign-form")
    form.get_by_role("radio", name=outcome_label, exact=True).check()
    form.get_by_label("Sign as").select_option(label=role_label)
    with page.expect_response(lambda response: response.url.endswith("/sign/")) as answer:
        form.get_by_role("button", name="Sign").click()
    return answer.value.status


def signature(page, username):
    return page.locator(f"#signatures li[data-signer={username}]")


def test_go_signed_by_a_tech_lead_and_devops_takes_effect(
    live_server, open_page, run, tech_lead, devops
):
    theo = open_page(tech_lead)
    theo.goto(phase_url(live_server, run))
    criteria = theo.locator("#criteria")
    expect(theo.locator("#recommendation")).to_have_text("HOLD")
    expect(criteria.locator("[data-criterion=upload_flow]")).to_have_attribute(
        "data-status", "missing"
    )

    # The two attestations no metric covers; each swaps the decision fragment in place.
    attest_on_page(theo, "Upload flow healthy, no orphaned uploads", "no orphaned uploads in S3")
    expect(criteria.locator("[data-criterion=upload_flow]")).to_have_attribute(
        "data-status", "pass"
    )
    expect(theo.locator("#decision-success")).to_have_text("Attestation recorded.")
    attest_on_page(theo, "Team consensus: stable", "agreed in the stand-up")
    expect(criteria.locator("[data-criterion=team_agrees]")).to_have_attribute(
        "data-status", "pass"
    )
    expect(criteria.locator("[data-criterion=team_agrees]")).to_contain_text(
        "agreed in the stand-up"
    )
    expect(theo.locator("#recommendation")).to_have_text("GO")

    assert sign_on_page(theo, "Tech lead") == 200
    expect(theo.locator("#decision-success")).to_have_text(
        "Signed GO as Tech lead: it takes effect with the second signature."
    )
    expect(signature(theo, "theo")).to_contain_text("GO — Tech lead theo")

    dana = open_page(devops)
    dana.goto(phase_url(live_server, run))
    expect(signature(dana, "theo")).to_have_class("signature valid")
    expect(signature(dana, "theo")).to_contain_text("GO — Tech lead theo")
    assert sign_on_page(dana, "DevOps") == 200
    expect(dana.locator("#decision-success")).to_have_text("GO is signed by both and in effect.")
    expect(dana.locator("#effective-decision")).to_contain_text("GO in effect since")
    expect(dana.locator("#sign-form")).to_have_count(0)
    dana.reload()
    expect(dana.locator("#phase-state")).to_have_text("Decided")
    expect(dana.locator("#effective-decision")).to_contain_text("(recommendation GO)")

    decision = Decision.objects.get(phase_run=run)
    assert decision.state == Decision.State.EFFECTIVE
    assert decision.outcome == Decision.Outcome.GO and decision.recommendation == "go"
    valid = decision.signatures.filter(invalidated_at__isnull=True)
    assert {(item.signer.username, item.role) for item in valid} == {
        ("theo", Signature.Role.TECH_LEAD),
        ("dana", Signature.Role.DEVOPS),
    }
    assert {item.evidence_digest for item in valid} == {decision.evidence_digest}
    assert PhaseRun.objects.get(pk=run.pk).state == PhaseRun.State.DECIDED
    # GO tries to start B2b at once, but B2b has no pre-flight in this test: the rollout waits
    # for its start from the pre-flight page, and the audit trail says so.
    assert Rollout.objects.get(pk=run.rollout.pk).state == Rollout.State.AWAITING_NEXT
    waiting = AuditEntry.objects.get(action="decision.next_phase_waiting")
    assert "B2b" in waiting.detail and "pre-flight" in waiting.detail
    assert not ConfigChange.objects.filter(kind=ConfigChange.Kind.PHASE_START).exists()


def test_new_metrics_between_the_signatures_invalidate_the_first(
    live_server, open_page, run, production_at_b2a, tech_lead, devops
):
    attest_all(run, tech_lead)
    theo = open_page(tech_lead)
    theo.goto(phase_url(live_server, run))
    assert sign_on_page(theo, "Tech lead") == 200
    expect(theo.locator("#decision-success")).to_contain_text("takes effect with the second")

    dana = open_page(devops)
    # A fake clock, so that the page's 30-second evidence poll can be run on demand.
    dana.clock.install()
    dana.goto(phase_url(live_server, run))
    expect(signature(dana, "theo")).to_have_class("signature valid")
    seen = dana.locator("#sign-form input[name=evidence_digest]").get_attribute("value")

    # Late logs for the window arrive after dana loaded the page.
    MinuteBucket.objects.filter(
        environment=production_at_b2a, minute=run.in_effect_at, cohort="native"
    ).update(requests=80)
    current = build(run, timezone.now()).digest
    assert current != seen

    check_url = f"{live_server.url}/phases/{run.public_id}/evidence-check/?seen="
    assert dana.request.get(check_url + fingerprint(run, timezone.now())).status == 204
    expect(dana.locator("#evidence-changed")).to_have_count(0)
    dana.clock.fast_forward("00:31")
    expect(dana.locator("#evidence-poll #evidence-changed")).to_contain_text(
        "The evidence changed since this page was loaded"
    )

    # Signing the figures on the stale page is refused.
    assert sign_on_page(dana, "DevOps") == 409
    expect(dana.locator("#decision-error")).to_contain_text(
        "The evidence changed since you loaded this page"
    )
    assert not Signature.objects.filter(signer=devops).exists()

    dana.reload()
    assert sign_on_page(dana, "DevOps") == 200
    expect(dana.locator("#decision-success")).to_have_text(
        "Signed GO as DevOps: it takes effect with the second signature."
    )
    expect(signature(dana, "theo")).to_have_class("signature invalid")
    expect(signature(dana, "theo")).to_contain_text(
        "no longer counts: evidence changed before the second signature: requests "
    )
    expect(signature(dana, "theo")).to_contain_text(re.compile(r"native requests [\d,]+ → [\d,]+"))
    expect(signature(dana, "dana")).to_have_class("signature valid")
    expect(dana.locator("#effective-decision")).to_have_count(0)

    decision = Decision.objects.get(phase_run=run)
    assert decision.state == Decision.State.OPEN
    assert decision.evidence_digest == current
    first = decision.signatures.get(signer=tech_lead)
    assert first.invalidated_at is not None
    assert decision.signatures.get(signer=devops).invalidated_at is None

    # theo signs again, on the new evidence: now the two signatures agree and GO is in effect.
    theo.reload()
    expect(signature(theo, "theo")).to_have_class("signature invalid")
    assert sign_on_page(theo, "Tech lead") == 200
    expect(theo.locator("#decision-success")).to_have_text("GO is signed by both and in effect.")
    decision.refresh_from_db()
    assert decision.state == Decision.State.EFFECTIVE


def test_a_viewer_sees_the_evidence_but_no_forms(live_server, open_page, run, tech_lead, viewer):
    attest_all(run, tech_lead)
    signoff.sign(
        run=run,
        outcome="go",
        role="tech_lead",
        seen_digest=build(run, timezone.now()).digest,
        justification="",
        person=tech_lead,
        now=timezone.now(),
    )
    vera = open_page(viewer)
    vera.goto(phase_url(live_server, run))
    expect(vera.locator("#recommendation")).to_have_text("GO")
    expect(vera.locator("#criteria [data-criterion=native_traffic]")).to_have_attribute(
        "data-status", "pass"
    )
    expect(signature(vera, "theo")).to_contain_text("GO — Tech lead theo")
    expect(vera.locator("#sign-form")).to_have_count(0)
    expect(vera.locator("#attest-form")).to_have_count(0)
    expect(vera.get_by_role("button", name="Withdraw")).to_have_count(0)
