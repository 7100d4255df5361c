"""Sentences written when something happens and shown later: kept as facts (or as a message and
its parameters) beside an English record, and said when they are read, in the reader's language
and time zone. Each kind in English and in German, and a row from before the facts were kept,
which shows the sentence it kept."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from integrations.kv_value import CanarySettings
from metrics import alerts
from metrics.models import AlertEvent, AlertRule, AlertState, MinuteBucket
from monitoring.drift_words import findings_words
from monitoring.models import DriftEvent
from rollout.models import (
    AuditEntry,
    ConfigChange,
    PostMortem,
    Preferences,
    PreviewCheck,
    PreviewRun,
    Signature,
)
from rollout.services import controls, evidence_words, signoff
from rollout.services import preview as preview_suite
from rollout.services.evidence import build
from rollout.services.preview_words import config, decimal, said
from rollout.templatetags.audit_words import describe_change
from tests.conftest import client_for, make_environment
from tests.support.rollouts import NOW, attest_all, observing, sign

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def in_german(function, *args):
    with translation.override("de"), timezone.override(BERLIN):
        return function(*args)


# --- a decision's frozen evidence ----------------------------------------------------------------


def test_the_evidence_keeps_english_and_utc_and_a_page_says_it_in_its_reader_s(
    production_at_b2a, tech_lead
):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    with translation.override("de"), timezone.override(BERLIN):
        document = build(run, NOW).document
    recommendation = document["recommendation"]
    criteria = {criterion["key"]: criterion for criterion in recommendation["criteria"]}
    upload = criteria["upload_flow"]
    at = datetime.fromisoformat(upload["figures"]["at"])

    # Kept: English, UTC, whoever built it.
    assert (
        upload["detail"]
        == f"upload flow healthy, attested by theo at {at:%Y-%m-%d %H:%M} UTC: checked"
    )
    assert criteria["native_traffic"]["detail"] == "native traffic 57,600 requests ≥ 500"
    # Said: in the reader's language and zone, from the figures.
    berlin = at.astimezone(BERLIN)
    assert in_german(evidence_words.criterion_words, upload, recommendation) == (
        f"Upload-Ablauf gesund, bestätigt von theo am {berlin:%Y-%m-%d %H:%M} CET: checked"
    )
    assert in_german(
        evidence_words.criterion_words, criteria["native_traffic"], recommendation
    ) == ("Native-Traffic 57.600 Anfragen ≥ 500")
    assert in_german(evidence_words.criterion_words, criteria["native_5xx"], recommendation) == (
        "Native-5xx 0,00% (95-%-KI 0,00–0,01%) < 1,5%"
    )
    # Read in English, every sentence is the one kept (here the page's zone is UTC too).
    with timezone.override(UTC):
        for criterion in recommendation["criteria"]:
            said_now = evidence_words.criterion_words(criterion, recommendation)
            assert said_now == criterion["detail"]


def test_a_criterion_its_figures_do_not_say_shows_the_sentence_it_kept():
    older = {"key": "native_5xx", "status": "pass", "figures": {}, "detail": "as it was kept"}
    unknown = {"key": "a_later_rule", "status": "pass", "figures": {}, "detail": "kept too"}

    assert in_german(evidence_words.criterion_words, older, {}) == "as it was kept"
    assert in_german(evidence_words.criterion_words, unknown, {}) == "kept too"


def test_the_digest_never_depends_on_the_reader_even_with_incidents(production_at_b2a, devops):
    run = observing(production_at_b2a)
    controls.emergency_stop(environment=production_at_b2a, reason="spike", actor=devops)
    ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).update(
        requested_at=NOW - timedelta(hours=2)
    )
    with translation.override("de"), timezone.override(BERLIN):
        german = build(run, NOW)
    english = build(run, NOW)

    assert german.digest == english.digest
    incident = english.document["incidents"][0]
    assert incident["summary"] == "emergency stop by dana: spike"
    incidents = next(
        c for c in english.document["recommendation"]["criteria"] if c["key"] == "incidents"
    )
    moment = datetime.fromisoformat(incident["at"]).astimezone(BERLIN)
    assert in_german(evidence_words.criterion_words, incidents, {}) == (
        f"1 Vorfall im Fenster: NOT-AUS am {moment:%Y-%m-%d %H:%M} CET: NOT-AUS von dana: spike"
    )


def test_an_incident_s_summary_is_said_from_its_facts_and_an_older_one_keeps_its_text(
    production_at_b2a, devops, tech_lead
):
    run = observing(production_at_b2a)
    controls.emergency_stop(environment=production_at_b2a, reason="spike", actor=devops)
    ConfigChange.objects.filter(kind=ConfigChange.Kind.EMERGENCY_STOP).update(
        requested_at=NOW - timedelta(hours=2)
    )
    rule = alerts.policy_for(production_at_b2a.service).rules.get(
        kind=AlertRule.Kind.NATIVE_5XX, severity=AlertRule.Severity.CRITICAL
    )
    state = AlertState.objects.create(rule=rule, environment=production_at_b2a)
    AlertEvent.objects.create(
        alert=state,
        environment=production_at_b2a,
        old_state="pending",
        new_state="firing",
        minute=NOW - timedelta(hours=3),
    )
    with translation.override("de"), timezone.override(BERLIN):
        document = build(run, NOW).document
    stop, alert = document["incidents"]

    # Kept: the summary in English, and its message and facts.
    assert (
        alert["summary"]
        == f"critical alert {rule.name}: native 5xx rate above (%) 3 for 3 min (critical)"
    )
    assert stop["summary"] == "emergency stop by dana: spike"
    # Said: in the reader's language.
    assert in_german(evidence_words.incident_summary, alert) == (
        f"kritischer Alarm {rule.name}: Native-5xx-Rate über (%) 3 für 3 Min. (kritisch)"
    )
    assert in_german(evidence_words.incident_summary, stop) == "NOT-AUS von dana: spike"
    Preferences.objects.create(user=tech_lead, language="de")
    page = client_for(tech_lead).get(reverse("rollout:phase_run", args=[run.public_id]))
    text = page.content.decode()
    assert "NOT-AUS: NOT-AUS von dana: spike" in text
    assert f"kritischer Alarm: kritischer Alarm {rule.name}: Native-5xx-Rate über" in text
    assert "emergency stop by" not in text and "critical alert" not in text

    # Evidence kept before the facts were: its text, in German framing.
    older = {key: alert[key] for key in ("kind", "at", "summary")}
    moment = datetime.fromisoformat(older["at"]).astimezone(BERLIN)
    criterion = {"key": "incidents", "status": "borderline", "figures": {"incidents": [older]}}
    assert in_german(evidence_words.criterion_words, criterion, {}) == (
        f"1 Vorfall im Fenster: kritischer Alarm am {moment:%Y-%m-%d %H:%M} CET: "
        f"critical alert {rule.name}: native 5xx rate above (%) 3 for 3 min (critical)"
    )


def test_a_signature_that_no_longer_counts_says_why_in_its_reader_s_language(
    production_at_b2a, tech_lead, devops
):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    sign(run, tech_lead, "tech_lead")
    MinuteBucket.objects.filter(
        environment=production_at_b2a, minute=run.in_effect_at, cohort="native"
    ).update(requests=80)
    sign(run, devops, "devops")
    first = Signature.objects.get(signer=tech_lead)

    assert first.invalidated_reason == (
        "evidence changed before the second signature: requests 576,000 → 576,040; "
        "native share 10% → 10.006%; native requests 57,600 → 57,640"
    )
    template = Template("{% load evidence_words %}{{ signature|no_longer_counts }}")
    with translation.override("de"):
        assert template.render(Context({"signature": first})) == (
            "die Belege haben sich vor der zweiten Unterschrift geändert: Anfragen 576.000 → "
            "576.040; Native-Anteil 10% → 10,006%; native Anfragen 57.600 → 57.640"
        )
    first.invalidated_because = {}  # a signature from before the facts were kept
    with translation.override("de"):
        assert template.render(Context({"signature": first})) == first.invalidated_reason


def test_a_withdrawn_decision_s_signatures_say_who_withdrew_it(production_at_b2a, tech_lead):
    run = observing(production_at_b2a)
    attest_all(run, tech_lead)
    decision = sign(run, tech_lead, "tech_lead").decision
    signoff.withdraw(decision=decision, person=tech_lead, note="wrong window", now=NOW)
    signature = Signature.objects.get(decision=decision)

    assert signature.invalidated_reason == "decision withdrawn by theo"
    with translation.override("de"):
        assert signoff.invalidation_words(signature.invalidated_because, "") == (
            "Entscheidung zurückgezogen von theo"
        )


def test_a_no_go_s_post_mortem_timeline_is_said_from_its_facts_until_someone_edits_it(
    production_at_b2a, tech_lead, devops, viewer
):
    run = observing(production_at_b2a, healthy=False)
    sign(run, tech_lead, "tech_lead", outcome="no_go")
    with translation.override("de"):  # the second signature given from a German page
        sign(run, devops, "devops", outcome="no_go")
    record = PostMortem.objects.get()
    started = run.started_at.astimezone(UTC)

    # Kept in English and UTC, as it was written before the facts were kept beside it.
    assert record.timeline.startswith(f"B2a (10%) — started {started:%Y-%m-%d %H:%M} UTC\n- ")
    assert " UTC in effect at the edge\n" in record.timeline
    assert " UTC decision.signed by theo: " in record.timeline
    # Said in the reader's language and time zone: our framing; the trail's actions and details
    # stay as it keeps them.
    german = in_german(signoff.timeline_shown, record)
    assert german.startswith(
        f"B2a (10%) — gestartet {run.started_at.astimezone(BERLIN):%Y-%m-%d %H:%M} CET"
    )
    assert " CET an der Edge wirksam\n" in german
    assert " CET decision.signed von theo: " in german
    entries = german.splitlines()[2:]
    assert entries and all(re.match(r"- \S+ \S+ CES?T [\w.]+ von \S+", line) for line in entries)

    url = reverse("rollout:post_mortem", args=[record.public_id])
    for person in (viewer, tech_lead):
        Preferences.objects.create(user=person, language="de", time_zone="Europe/Berlin")
    assert german in client_for(viewer).get(url).content.decode().replace("&gt;", ">")
    form = {"root_cause": "Pool erschöpft", "fix_plan": "", "rerollout_date": "", "owner": ""}
    author = client_for(tech_lead)
    page = author.get(url).content.decode()
    assert "Grundursache" in page and "Root cause" not in page and "Re-rollout date" not in page
    # Sent back as it was shown: nobody edited it, it stays said from its facts.
    saved = author.post(url, {**form, "timeline": german.replace("\n", "\r\n")})
    assert "Gespeichert." in saved.content.decode()
    record.refresh_from_db()
    assert record.root_cause == "Pool erschöpft" and "gestartet" not in record.timeline
    assert in_german(signoff.timeline_shown, record) == german
    # Edited: people's text from then on, shown as it is to every reader.
    author.post(url, {**form, "timeline": german + "\n- 14:10 Pool vergrößert"})
    record.refresh_from_db()
    assert record.timeline.endswith("Pool vergrößert")
    assert signoff.timeline_shown(record) == record.timeline
    # A post-mortem from before the facts were kept shows its text.
    PostMortem.objects.filter(pk=record.pk).update(timeline="as kept", timeline_facts={})
    record.refresh_from_db()
    assert in_german(signoff.timeline_shown, record) == "as kept"


# --- alert rules, drift, audit --------------------------------------------------------------------


def test_an_alert_rule_s_condition_in_the_reader_s_language():
    rule = AlertRule(kind="native_5xx_rate", threshold=1.5, for_minutes=5, severity="warning")
    stale = AlertRule(kind="logs_stale", threshold=15, severity="critical")

    assert rule.describe() == "native 5xx rate above (%) 1.5 for 5 min (warning)"
    assert stale.describe() == "no new logs for more than (minutes) 15 (critical)"
    with translation.override("de"):
        assert rule.describe() == "Native-5xx-Rate über (%) 1,5 für 5 Min. (Warnung)"
        assert stale.describe() == "keine neuen Logs seit mehr als (Minuten) 15 (kritisch)"


def test_what_a_drift_check_found_in_the_reader_s_language():
    findings = [
        {
            "kind": "external",
            "kv": {"settings": CanarySettings(50, "B2a", False).as_dict()},
            "desired": CanarySettings(10, "B2a", False).as_dict(),
            "version": 3,
        },
        {
            "kind": "edge_behind",
            "edge": {"emergency_proxy": True, "tag": "B2a"},
            "kv": CanarySettings(10, "B2a", False).as_dict(),
            "waited": 95,
            "allowance": 60,
        },
    ]

    assert findings_words(findings) == (
        "KV holds 50%, tag B2a, desired is 10%, tag B2a (version 3); it was changed outside "
        "the dashboard; the edge reports EMERGENCY, tag B2a, KV holds 10%, tag B2a since 95s "
        "(allowance 60s)"
    )
    with translation.override("de"):
        assert findings_words(findings) == (
            "KV enthält 50%, Tag B2a, Soll ist 10%, Tag B2a (Version 3); es wurde außerhalb des "
            "Dashboards geändert; die Edge meldet NOT-AUS, Tag B2a, KV enthält 10%, Tag B2a seit "
            "95 s (Spielraum 60 s)"
        )
        assert findings_words([], "kept before the findings were") == (
            "kept before the findings were"
        )
    event = DriftEvent(old_kv_state="in_sync", new_kv_state="external", detail="as kept")
    with translation.override("de"):
        assert event.kv_change == "entspricht dem Soll → außerhalb des Dashboards geändert"
        assert event.detail_words == "as kept"


def test_what_an_audit_entry_changed_in_the_reader_s_language():
    before = {"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False}
    after = {"canary_percent": 25, "canary_tag": "B2b", "emergency_proxy": False}

    with translation.override("de"):
        assert describe_change(before, after) == "Prozent 10% → 25%, Tag B2a → B2b"
        assert describe_change(None, after) == "Prozent 25%, Tag B2b, NOT-AUS aus"
        assert describe_change({"state": "observing"}, None) == "war Zustand observing"
        assert describe_change(after, after) == "keine Änderung"


# --- the preview suite ----------------------------------------------------------------------------


@pytest.fixture
def preview_run(edge, release_manager):
    preview = make_environment(edge, name="preview")
    controls.adopt_existing_config(
        environment=preview, settings=CanarySettings(10, "B2a", False), system="test"
    )
    return preview_suite.create_run(environment=preview, build="b1", started_by=release_manager)


def test_what_a_preview_check_saw_in_the_reader_s_language(preview_run):
    emergency = preview_run.checks.get(name=PreviewCheck.Name.EMERGENCY_PROXY)
    result = preview_suite.passed(
        [
            said(
                "100%% proxy (%(routing)s), in effect %(seconds)ss after the request",
                routing="cohort=proxy;reason=emergency",
                seconds=decimal(0.14, ".1f"),
            ),
            "; ",
            said(
                "restored %(config)s as version %(version)s",
                config=config(CanarySettings(10, "B2a", False)),
                version=3,
            ),
        ],
        {},
    )
    preview_suite._record(emergency, result)
    emergency.refresh_from_db()

    assert emergency.note == (
        "100% proxy (cohort=proxy;reason=emergency), in effect 0.1s after the request; "
        "restored 10%, tag B2a as version 3"
    )
    assert emergency.said == emergency.note
    with translation.override("de"):
        assert emergency.said == (
            "100% Proxy (cohort=proxy;reason=emergency), wirksam 0,1 s nach der Anfrage; "
            "10%, Tag B2a als Version 3 wiederhergestellt"
        )
    PreviewCheck.objects.filter(pk=emergency.pk).update(words=[])  # a check from before
    emergency.refresh_from_db()
    with translation.override("de"):
        assert emergency.said == emergency.note


def test_the_preview_report_file_speaks_the_team_s_language_throughout(
    preview_run, release_manager
):
    preview_suite._record(
        preview_run.checks.get(name=PreviewCheck.Name.RATE_LIMIT),
        preview_suite.failed(
            said("request %(number)s of the burst answered %(status)s", number=3, status=500)
        ),
    )
    PreviewRun.objects.filter(pk=preview_run.pk).update(
        state="failed", finished_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    )
    service = preview_run.environment.service
    service.language = "de"
    service.save()
    Preferences.objects.create(user=release_manager, language="en-gb")
    url = reverse("rollout:preview_report_markdown", args=[preview_run.public_id])

    text = client_for(release_manager).get(url).content.decode()

    assert "# pix-immo-api Preview-Testsuite — Testergebnisse" in text
    assert "**Datum:** 2026-12-01 12:00 UTC" in text
    assert (
        "| Rate-Begrenzung | ❌ FEHLGESCHLAGEN | Anfrage 3 der Salve wurde mit 500 beantwortet |"
        in (text)
    ), text
    assert "**NO-GO** — starte mit diesem Build keine Produktionsphase." in text
    giveaways = re.compile(r"\b(the|request|passed|failed|finished|Decision|Next steps)\b")
    assert not giveaways.search(text), giveaways.search(text)


# --- names and states -----------------------------------------------------------------------------


def test_roles_and_states_are_named_in_the_reader_s_language(production_at_b2a, tech_lead):
    run = observing(production_at_b2a)
    Preferences.objects.create(user=tech_lead, language="de")
    run.state = "decided"
    run.save()

    page = client_for(tech_lead).get(reverse("rollout:phase_run", args=[run.public_id]))
    text = page.content.decode()

    assert "theo · Tech Lead</span>" in text
    assert '<strong id="phase-state">Entschieden</strong>' in text


# --- the runbook's check-ins ----------------------------------------------------------------------


def test_check_ins_are_named_from_their_offset_in_the_reader_s_language(
    production_at_b2a, release_manager
):
    with translation.override("de"):  # a window begun by a German-speaking request
        run = observing(production_at_b2a, hours_ago=3)
    check_ins = list(run.check_ins.order_by("offset"))

    # Kept in English for the record, whoever began the window.
    assert [item.label for item in check_ins] == [
        "T+0",
        "T+30 min",
        "T+2 h",
        "T+6 h",
        "T+12 h",
        "T+24 h",
    ]
    assert [in_german(lambda item=item: item.label_words) for item in check_ins] == [
        "T+0",
        "T+30 Min.",
        "T+2 Std.",
        "T+6 Std.",
        "T+12 Std.",
        "T+24 Std.",
    ]
    older = check_ins[1]
    older.label = "T+30 Min."  # a row kept in the language of the request that began it
    assert older.label_words == "T+30 min"

    Preferences.objects.create(user=release_manager, language="de")
    client = client_for(release_manager)
    phase = client.get(reverse("rollout:phase_run", args=[run.public_id])).content.decode()
    timeline = phase[phase.index('id="timeline"') :]
    assert "<strong>T+2 Std.</strong>" in timeline
    assert '<span class="badge status-due">fällig</span>' in timeline
    assert '<span class="badge status-upcoming">anstehend</span>' in timeline
    assert "T+2 Std. bestätigen" in timeline
    shown = re.sub(r"<[^>]*>", " ", timeline)  # the words, not the attributes
    assert not re.search(r"T\+\d+ (h|min)\b|\b(due|upcoming|missed|acknowledged)\b", shown)
    overview = client.get(reverse("rollout:overview")).content.decode()
    assert "Check-in T+2 Std. ist fällig" in overview
    assert "Check-in T+30 Min. wurde verpasst" in overview

    done = client.post(
        reverse("rollout:acknowledge_check_in", args=[check_ins[2].public_id]),
        {"note": "5xx 0,1 %"},
        HTTP_HX_REQUEST="true",
    )
    assert "T+2 Std. bestätigt." in done.content.decode()
    entry = AuditEntry.objects.get(action="phase.check_in")
    assert entry.detail == "B2a (10%) T+2 h acknowledged"
