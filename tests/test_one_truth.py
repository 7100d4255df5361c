"""One seeded phase, every place that shows its figures: the metrics panel's "phase" window, its
JSON and Prometheus outputs, the phase page, the HTML and Markdown reports — the same native and
proxy requests, 5xx and build. And the rollout at a glance: its progress and its whole report."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics.models import LogSource
from rollout.models import ConfigChange, Decision, Phase, PhaseRun, Preflight, PreviewRun, Rollout
from rollout.services import evidence, phases
from tests.conftest import client_for
from tests.support.rollouts import fill

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


def change(environment, version, kind, hours_ago, percent, tag):
    return ConfigChange.objects.create(
        environment=environment,
        version=version,
        kind=kind,
        requested_by_system="test",
        reason=f"{tag} {percent}%",
        after={"canary_percent": percent, "canary_tag": tag, "emergency_proxy": False},
        state=ConfigChange.State.IN_EFFECT,
        requested_at=NOW - timedelta(hours=hours_ago),
        in_effect_at=NOW - timedelta(hours=hours_ago),
    )


def seeded_phase(environment, person):
    """B2a 10 % in effect since 5 h (a percent change, as a start without approval records it),
    after an initial value 30 h ago; traffic all along; started from a pre-flight that checked
    build-42 (the rollout itself names no build)."""
    LogSource.objects.create(environment=environment, kind="directory", directory="/nonexistent")
    change(environment, 1, ConfigChange.Kind.INITIAL, 30, 0, "B2a")
    start = change(environment, 3, ConfigChange.Kind.PERCENT_CHANGE, 5, 10, "B2a")
    rollout = Rollout.objects.create(
        plan=environment.service.plan, environment=environment, build=""
    )
    phase = Phase.objects.get(plan=rollout.plan, tag="B2a")
    run = PhaseRun.objects.create(
        rollout=rollout, phase=phase, started_at=start.requested_at, start_change=start
    )
    phases.begin_window(rollout, run, in_effect_at=start.in_effect_at, now=start.in_effect_at)
    preview = PreviewRun.objects.create(
        environment=environment, build="build-42", state="passed", finished_at=NOW
    )
    Preflight.objects.create(
        environment=environment,
        phase=phase,
        started_at=start.requested_at,
        started_by=person,
        preview_run=preview,
        start_change=start,
    )
    fill(environment, NOW - timedelta(hours=30), NOW, native=(40, 1, 300.0), proxy=(360, 2, 280.0))
    LogSource.objects.filter(environment=environment).update(newest_log_at=NOW)
    run.refresh_from_db()
    return run


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_every_place_shows_the_same_figures_and_build(production_at_b2a, release_manager, viewer):
    run = seeded_phase(production_at_b2a, release_manager)
    client = client_for(viewer)
    environment = production_at_b2a
    seen = {}

    panel = client.get(
        reverse("metrics:panels", args=[environment.public_id]), {"window": "phase"}
    ).content.decode()
    row = {
        cohort: re.search(
            rf'data-cohort="{cohort}">.*?class="requests"[^>]*>(\d+)<.*?class="errors">(\d+)<',
            panel,
            re.S,
        )
        for cohort in ("native", "proxy")
    }
    seen["panel"] = (
        int(row["native"][1]),
        int(row["proxy"][1]),
        int(row["native"][2]),
        int(row["proxy"][2]),
        re.search(r"build (\S+) \(since", panel)[1],
    )

    document = json.loads(
        client.get(
            reverse("metrics:figures_json", args=[environment.public_id]), {"window": "phase"}
        ).content
    )
    cohorts = document["total"]["cohorts"]
    seen["json"] = (
        cohorts["native"]["requests"],
        cohorts["proxy"]["requests"],
        cohorts["native"]["errors_5xx"],
        cohorts["proxy"]["errors_5xx"],
        document["phase"]["build"],
    )

    text = client.get(reverse("metrics:prometheus")).content.decode()

    def sample(name, cohort):
        found = re.search(rf'{name}{{[^}}]*build="([^"]*)",cohort="{cohort}"}} (\d+)', text)
        return found

    seen["prometheus"] = (
        int(sample("rollout_phase_requests", "native")[2]),
        int(sample("rollout_phase_requests", "proxy")[2]),
        int(sample("rollout_phase_errors_5xx", "native")[2]),
        int(sample("rollout_phase_errors_5xx", "proxy")[2]),
        sample("rollout_phase_requests", "native")[1],
    )

    for place, address in (
        ("phase page", reverse("rollout:phase_run", args=[run.public_id])),
        ("HTML report", reverse("rollout:phase_report", args=[run.public_id])),
    ):
        html = client.get(address).content.decode()
        seen[place] = (
            number(re.search(r'class="native-requests">([\d,]+)<', html)[1]),
            number(re.search(r'class="proxy-requests">([\d,]+)<', html)[1]),
            number(re.search(r'class="native-errors">([\d,]+)<', html)[1]),
            number(re.search(r'class="proxy-errors">([\d,]+)<', html)[1]),
            re.search(r'class="build">([^<]*)<', html)[1],
        )

    markdown = client.get(reverse("rollout:phase_report_markdown", args=[run.public_id]))
    markdown = markdown.content.decode()
    traffic = re.search(r"\(([\d,]+) native, ([\d,]+) proxy;", markdown)
    errors = re.search(r"\*\*5xx:\*\* ([\d,]+) native, ([\d,]+) proxy", markdown)
    seen["Markdown report"] = (
        number(traffic[1]),
        number(traffic[2]),
        number(errors[1]),
        number(errors[2]),
        re.search(r"\*\*Build:\*\* (\S+)", markdown)[1],
    )

    minutes = 5 * 60  # from the minute B2a took effect to now
    expected = (40 * minutes, 360 * minutes, minutes, 2 * minutes, "build-42")
    assert seen == {place: expected for place in seen}


def test_a_phase_shows_its_plan_and_its_actual_percent(production_at_b2a, release_manager, viewer):
    run = seeded_phase(production_at_b2a, release_manager)
    production_at_b2a.desired.__class__.objects.filter(environment=production_at_b2a).update(
        canary_percent=5
    )
    change(production_at_b2a, 4, ConfigChange.Kind.PERCENT_CHANGE, 1, 5, "B2a")
    html = client_for(viewer).get(reverse("rollout:phase_run", args=[run.public_id]))
    words = " ".join(re.sub(r"<[^>]+>", " ", html.content.decode()).split())
    assert "plan 10%, actually 5% since" in words and "(lowered)" in words
    markdown = client_for(viewer).get(
        reverse("rollout:phase_report_markdown", args=[run.public_id])
    )
    assert "**Percent:** plan 10%, actually 5% since" in markdown.content.decode()
    overview = client_for(viewer).get(reverse("rollout:overview")).content.decode()
    overview = " ".join(re.sub(r"<[^>]+>", " ", overview).split())
    assert "B2a (10%) actually 5% (lowered)" in overview


def rollout_at_b2b(environment, person, tech_lead, devops):
    """B2a decided GO (signed by a tech lead and DevOps), B2b observing since 2 h."""
    run = seeded_phase(environment, person)
    frozen = evidence.build(run, NOW)
    PhaseRun.objects.filter(pk=run.pk).update(state=PhaseRun.State.DECIDED)
    decision = Decision.objects.create(
        phase_run=run,
        outcome=Decision.Outcome.GO,
        state=Decision.State.EFFECTIVE,
        recommendation=Decision.Outcome.GO,
        evidence=frozen.document,
        evidence_digest=frozen.digest,
        created_by=tech_lead,
        effective_at=NOW - timedelta(hours=2, minutes=5),
    )
    for signer, role in ((tech_lead, "tech_lead"), (devops, "devops")):
        decision.signatures.create(signer=signer, role=role, signed_at=NOW - timedelta(hours=2))
    b2b = change(environment, 5, ConfigChange.Kind.PERCENT_CHANGE, 2, 25, "B2b")
    second = PhaseRun.objects.create(
        rollout=run.rollout,
        phase=Phase.objects.get(plan=run.rollout.plan, tag="B2b"),
        started_at=b2b.requested_at,
        start_change=b2b,
    )
    phases.begin_window(run.rollout, second, in_effect_at=b2b.in_effect_at, now=NOW)
    return run.rollout


def test_the_rollout_page_shows_its_progress_and_its_whole_report(
    production_at_b2a, release_manager, tech_lead, devops, viewer, open_page, live_server
):
    rollout = rollout_at_b2b(production_at_b2a, release_manager, tech_lead, devops)
    page = open_page(viewer)
    page.goto(f"{live_server.url}/rollouts/{rollout.public_id}/")
    steps = page.locator("ol.progress li")
    assert steps.evaluate_all(
        "items => items.map(i => i.dataset.phase + ':' + i.dataset.state)"
    ) == [
        "B2a:done",
        "B2b:current",
        "B2c:next",
    ]
    assert page.locator('ol.progress li[aria-current="step"]').get_attribute("data-phase") == "B2b"
    assert "GO" in page.locator('ol.progress li[data-phase="B2a"]').inner_text()
    assert "window ends" in page.locator('ol.progress li[data-phase="B2b"]').inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "rollout-progress.png"), full_page=True)

    page.click("#rollout-report-link")
    report = page.locator("#rollout-report")
    text = report.inner_text()
    assert "B2a" in text and "B2b" in text
    decisions = page.locator("#rollout-decisions").inner_text()
    assert "GO" in decisions and "Tech lead" in decisions and "DevOps" in decisions
    assert page.locator(".phase-report").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "rollout-report.png"), full_page=True)

    markdown = client_for(viewer).get(f"/rollouts/{rollout.public_id}/report.md").content.decode()
    assert "## Progress" in markdown and "- B2a (10%): done, GO" in markdown
    assert "- B2b (25%): current, window ends" in markdown
    assert "## Decisions" in markdown and "DevOps" in markdown
    assert not re.search(r"^# .*: phase", markdown, re.M)  # each phase one heading level down
    assert "## pix-immo-api production: phase B2a (10%)" in markdown
