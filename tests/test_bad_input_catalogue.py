"""Every malformed input we know of, at every entry point, in one table: each gives a
clear message naming what is wrong, raises nothing unexpected, and writes nothing."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from integrations.edge_qa import parse_canary_header, validate_qa_body
from integrations.kv_value import InvalidKVValue, parse_object, read_settings
from integrations.logpush import BadLine, parse_http_request
from rollout.models import AuditEntry, ConfigChange, DesiredConfig
from tests.conftest import client_for, configured_environment, make_environment
from tests.monitoring.conftest import good_document
from tests.support.rollouts import b2b_request, make_production_at_b2a

GOOD_LINE = {
    "EdgeStartTimestamp": 1762957800000000000,
    "EdgeResponseStatus": 200,
    "EdgeTimeToFirstByteMs": 120,
    "ResponseHeaders": {"x-pix-canary": "1;tag=B2a;cohort=native;reason=sampled"},
}
LOGPUSH_LINES = [
    ("not json", "{not json"),
    ("a JSON array", "[1, 2]"),
    ("empty line", ""),
    ("no timestamp", {k: v for k, v in GOOD_LINE.items() if k != "EdgeStartTimestamp"}),
    ("no status", {k: v for k, v in GOOD_LINE.items() if k != "EdgeResponseStatus"}),
    ("no TTFB", {k: v for k, v in GOOD_LINE.items() if k != "EdgeTimeToFirstByteMs"}),
    ("boolean timestamp", {**GOOD_LINE, "EdgeStartTimestamp": True}),
    ("bad RFC 3339", {**GOOD_LINE, "EdgeStartTimestamp": "yesterday at noon"}),
    ("status as text", {**GOOD_LINE, "EdgeResponseStatus": "500"}),
    ("status out of range", {**GOOD_LINE, "EdgeResponseStatus": 1200}),
    ("negative TTFB", {**GOOD_LINE, "EdgeTimeToFirstByteMs": -5}),
    ("TTFB as text", {**GOOD_LINE, "EdgeTimeToFirstByteMs": "fast"}),
]


@pytest.mark.parametrize("case, line", LOGPUSH_LINES, ids=[c for c, _ in LOGPUSH_LINES])
def test_logpush_lines(case, line):
    raw = json.dumps(line) if isinstance(line, dict) else line
    with pytest.raises(BadLine) as problem:
        parse_http_request(raw)
    assert str(problem.value)


GOOD_BODY = good_document(canary__cohort="native")


def changed(section, **values):
    """The good body with ``values`` changed in its ``section``."""
    return {**GOOD_BODY, section: {**GOOD_BODY[section], **values}}


QA_BODIES = [
    ("no status", {k: v for k, v in GOOD_BODY.items() if k != "status"}, "lacks 'status'"),
    ("no canary", {k: v for k, v in GOOD_BODY.items() if k != "canary"}, "lacks 'canary'"),
    ("canary a list", {**GOOD_BODY, "canary": []}, "expected an object"),
    ("health null", {**GOOD_BODY, "health": None}, "expected an object"),
    ("percent text", changed("canary", percent="10"), "canary.percent"),
    ("percent 101", changed("canary", percent=101), "canary.percent"),
    ("emergency text", changed("canary", emergency_proxy="no"), "emergency_proxy"),
    ("unknown cohort", changed("canary", cohort="canary"), "canary.cohort"),
    ("other environment", {**GOOD_BODY, "environment": "preview"}, "was probed"),
    (
        "component error",
        changed("health", database="error: timeout"),
        "database reports error: timeout",
    ),
    ("component odd", changed("health", r2_bucket="meh"), "health.r2_bucket"),
    (
        "component missing",
        {**GOOD_BODY, "health": {"database": "ok", "r2_bucket": "ok"}},
        "lacks 'health.proxy_origin'",
    ),
]


@pytest.mark.parametrize("case, body, message", QA_BODIES, ids=[c for c, _, _ in QA_BODIES])
def test_api_qa_bodies(case, body, message):
    problems = validate_qa_body(body, expected_environment="production")
    assert any(message in problem for problem in problems), problems


def test_the_good_body_has_no_problem():
    assert validate_qa_body(GOOD_BODY, expected_environment="production") == []


KV_VALUES = [
    ("not JSON", b"canary=10", "not JSON"),
    ("JSON array", b"[10]", "not an object"),
    ("JSON string", b'"10%"', "not an object"),
    ("not UTF-8", b"\xff\xfe\x00", "not UTF-8"),
    ("truncated", b'{"canary_percent": 1', "not JSON"),
]


@pytest.mark.parametrize("case, raw, message", KV_VALUES, ids=[c for c, _, _ in KV_VALUES])
def test_kv_values_read_back(case, raw, message):
    with pytest.raises(InvalidKVValue, match=message):
        parse_object(raw)
    assert read_settings(raw) is None


HEADERS = [
    ("missing", None, "missing or empty"),
    ("blank", "   ", "missing or empty"),
    ("no cohort", "1;tag=B2a;reason=sampled", "no cohort"),
    ("bad cohort", "1;tag=B2a;cohort=both", "is not native or proxy"),
    ("garbage", ";;;===;;", "no cohort"),
    ("binary-ish", "\x00\x01", "no cohort"),
]


@pytest.mark.parametrize("case, value, message", HEADERS, ids=[c for c, _, _ in HEADERS])
def test_x_pix_canary_headers(case, value, message):
    header = parse_canary_header(value)
    assert not header.valid
    assert any(message in problem for problem in header.problems), header.problems


PERCENT_POSTS = [
    ("percent -1", {"canary_percent": "-1"}, "whole number from 0 to 100"),
    ("percent 101", {"canary_percent": "101"}, "whole number from 0 to 100"),
    ("percent 10.5", {"canary_percent": "10.5"}, "whole number from 0 to 100"),
    ("percent abc", {"canary_percent": "abc"}, "whole number from 0 to 100"),
    ("percent 1e2", {"canary_percent": "1e2"}, "whole number from 0 to 100"),
    ("percent missing", {"canary_percent": ""}, "Enter a percent"),
    ("tag empty", {"canary_tag": ""}, "Enter the phase tag"),
    ("tag with spaces", {"canary_tag": "B 2"}, "A tag is 1–32"),
    ("tag too long", {"canary_tag": "B" * 40}, "A tag is 1–32"),
    ("reason blank", {"reason": "  "}, "Give a reason"),
    ("reason too long", {"reason": "x" * 1001}, "At most 1,000 characters (you entered 1,001)."),
    ("version lost", {"expected_version": ""}, "Reload the page"),
    ("version text", {"expected_version": "v1"}, "Enter a whole number"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case, change, message", PERCENT_POSTS, ids=[c for c, _, _ in PERCENT_POSTS]
)
def test_set_percent_posts(edge, release_manager, case, change, message):
    environment = configured_environment(edge)
    data = {
        "canary_percent": "5",
        "canary_tag": "B2a",
        "reason": "lower",
        "expected_version": "1",
        "confirmed": "true",
        **change,
    }
    response = client_for(release_manager).post(
        reverse("rollout:set_percent", args=[environment.public_id]), data
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert DesiredConfig.objects.get(environment=environment).version == 1
    assert ConfigChange.objects.count() == 1


AUDIT_FILTERS = [
    ("bad since", {"since": "26.11.2026"}, "Enter a date as YYYY-MM-DD."),
    ("bad until", {"until": "2026-02-30"}, "Enter a date as YYYY-MM-DD."),
    ("range backwards", {"since": "2026-11-26", "until": "2026-11-01"}, "after the To date"),
    ("environment not a uuid", {"environment": "production"}, "Unknown environment id."),
    ("cursor text", {"before": "last"}, "Enter a whole number."),
    ("cursor zero", {"before": "0"}, "greater than or equal to 1"),
    ("text too long", {"q": "y" * 201}, "at most 200 characters"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case, params, message", AUDIT_FILTERS, ids=[c for c, _, _ in AUDIT_FILTERS]
)
def test_audit_filters(viewer, case, params, message):
    response = client_for(viewer).get(reverse("rollout:audit"), params)
    assert response.status_code == 422
    assert message in response.content.decode()


COMMANDS = [
    ("unknown service", ["nope", "production"], "no environment nope/production"),
    (
        "bad initial percent",
        ["pix-immo-api", "production", "--initial-percent", "150", "--initial-tag", "B2a"],
        "whole number from 0 to 100",
    ),
    (
        "bad initial tag",
        ["pix-immo-api", "production", "--initial-percent", "10", "--initial-tag", "B 2 a"],
        "A tag is 1–32",
    ),
    (
        "empty reason",
        [
            "pix-immo-api",
            "production",
            "--initial-percent",
            "10",
            "--initial-tag",
            "B2a",
            "--reason",
            " ",
        ],
        "Give a reason",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case, arguments, message", COMMANDS, ids=[c for c, _, _ in COMMANDS])
def test_connect_environment_command(edge, case, arguments, message):
    make_environment(edge, connected=False)
    with pytest.raises(CommandError, match=message):
        call_command("connect_environment", *arguments)
    assert not ConfigChange.objects.exists() and not DesiredConfig.objects.exists()


@pytest.mark.django_db
def test_a_bad_token_for_the_command_is_named(edge, settings):
    make_environment(edge, connected=False)
    settings.CLOUDFLARE_API_TOKEN = "wrong"
    with pytest.raises(CommandError, match="connection check failed"):
        call_command("connect_environment", "pix-immo-api", "production")
    assert AuditEntry.objects.get().outcome == "failed"


DIGEST = "0" * 64
DECISION_POSTS = [
    ("sign: unknown outcome", "sign", {"outcome": "maybe", "role": "tech_lead"}, "GO, HOLD"),
    ("sign: outcome missing", "sign", {"role": "tech_lead"}, "required"),
    ("sign: unknown role", "sign", {"outcome": "go", "role": "boss"}, "tech lead or DevOps"),
    (
        "sign: digest not hex",
        "sign",
        {"outcome": "go", "role": "tech_lead", "evidence_digest": "z" * 64},
        "not readable",
    ),
    (
        "sign: digest too long",
        "sign",
        {"outcome": "go", "role": "tech_lead", "evidence_digest": "0" * 65},
        "at most 64",
    ),
    (
        "sign: justification too long",
        "sign",
        {"outcome": "go", "role": "tech_lead", "justification": "j" * 4001},
        "At most 4,000 characters (you entered 4,001).",
    ),
    (
        "attest: unknown kind",
        "attest",
        {"kind": "vibes", "value": "yes", "note": "x"},
        "valid choice",
    ),
    (
        "attest: value not yes/no",
        "attest",
        {"kind": "upload_flow", "value": "1", "note": "x"},
        "yes or no",
    ),
    (
        "attest: blank note",
        "attest",
        {"kind": "upload_flow", "value": "yes", "note": "  "},
        "short note",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case, action, data, message", DECISION_POSTS, ids=[c for c, _, _, _ in DECISION_POSTS]
)
def test_decision_posts(edge, tech_lead, case, action, data, message):
    from rollout.models import PhaseAttestation, Signature
    from tests.test_decisions import observing

    run = observing(make_production_at_b2a(edge))
    data = {"evidence_digest": DIGEST, **data} if action == "sign" else data
    response = client_for(tech_lead).post(f"/phases/{run.public_id}/{action}/", data)
    assert response.status_code == 422, (case, response.status_code)
    assert message in response.content.decode(), case
    assert not Signature.objects.exists() and not PhaseAttestation.objects.exists()


# --- texts people write: accepted at their limit, refused one character over -------------------


def _post_mortem(run, person):
    from rollout.models import Decision, PostMortem

    decision = Decision.objects.create(
        phase_run=run,
        outcome="no_go",
        recommendation="no_go",
        evidence={},
        evidence_digest=DIGEST,
        created_by=person,
    )
    return PostMortem.objects.create(decision=decision, timeline="t")


def _text_form(edge, people, form):
    """(person, URL, the rest of the form) for one form with a text field."""
    from tests.test_decisions import observing

    if form in ("set_percent", "emergency_stop", "rollback", "lift_emergency", "approve_note"):
        environment = configured_environment(edge)
        person = people["release_manager"]
        data = {"canary_percent": "5", "canary_tag": "B2a", "expected_version": "1"}
        if form == "approve_note":
            pending = b2b_request(environment, person, base_version=1)
            return people["tech_lead"], f"/requests/{pending.public_id}/approve/", {}
        return person, reverse(f"rollout:{form}", args=[environment.public_id]), data
    if form == "drift_reason":
        environment = configured_environment(edge)
        url = reverse("monitoring:adopt", args=[environment.public_id])
        return people["release_manager"], url, {"kv_hash": "a" * 64, "expected_version": "1"}
    if form == "alert_reason":
        environment = make_environment(edge)
        from tests.metrics.test_views import form_data

        data = form_data()
        url = reverse("metrics:save_alert_rules", args=[environment.service.name])
        return people["admin_user"], url, data
    if form in ("attest_names", "attest_note", "window_override_reason"):
        environment = configured_environment(edge)
        if form == "window_override_reason":
            url = reverse("rollout:start_phase", args=[environment.public_id])
            data = {"tag": "B2a", "reason": "start", "expected_version": "1"}
            return people["release_manager"], url, data
        url = reverse("rollout:preflight_attest", args=[environment.public_id, "oncall_confirmed"])
        return people["release_manager"], url, {"names": "dana"}
    run = observing(make_production_at_b2a(edge))
    if form == "check_in_note":
        return people["tech_lead"], f"/check-ins/{run.check_ins.first().public_id}/acknowledge/", {}
    if form == "phase_attest_note":
        data = {"kind": "upload_flow", "value": "yes"}
        return people["tech_lead"], f"/phases/{run.public_id}/attest/", data
    if form == "justification":
        data = {"outcome": "go", "role": "tech_lead", "evidence_digest": DIGEST}
        return people["tech_lead"], f"/phases/{run.public_id}/sign/", data
    if form == "withdraw_note":
        decision = _post_mortem(run, people["tech_lead"]).decision
        return people["tech_lead"], f"/decisions/{decision.public_id}/withdraw/", {}
    if form == "abort_note":
        return people["release_manager"], f"/rollouts/{run.rollout.public_id}/abort/", {}
    record = _post_mortem(run, people["tech_lead"])
    data = {"timeline": "t", "root_cause": "", "fix_plan": ""}
    return people["tech_lead"], f"/post-mortems/{record.public_id}/", data


# Every text a person writes on a page, by its limit (rollout/limits.py): (form, field, limit).
TEXT_LIMITS = [
    *(
        (form, field, 1000)
        for form, field in [
            ("set_percent", "reason"),
            ("emergency_stop", "reason"),
            ("rollback", "reason"),
            ("lift_emergency", "reason"),
            ("approve_note", "note"),
            ("drift_reason", "reason"),
            ("alert_reason", "reason"),
            ("attest_note", "note"),
            ("window_override_reason", "window_override_reason"),
            ("check_in_note", "note"),
            ("phase_attest_note", "note"),
            ("withdraw_note", "note"),
            ("abort_note", "note"),
        ]
    ),
    ("attest_names", "names", 500),
    ("justification", "justification", 4000),
    *(
        (f"post-mortem {section}", section, 20000)
        for section in ("root_cause", "fix_plan", "timeline")
    ),
]


def _row_counts():
    from django.apps import apps

    return {
        model._meta.label: model.objects.count()
        for app in ("rollout", "monitoring", "metrics")
        for model in apps.get_app_config(app).get_models()
    }


@pytest.mark.django_db
@pytest.mark.parametrize("form, field, limit", TEXT_LIMITS, ids=[c for c, _, _ in TEXT_LIMITS])
def test_texts_at_their_limit_and_one_over(
    edge, release_manager, tech_lead, admin_user, form, field, limit
):
    people = {"release_manager": release_manager, "tech_lead": tech_lead, "admin_user": admin_user}
    person, url, data = _text_form(edge, people, form.split(" ")[0])
    client = client_for(person)
    # Line breaks as a browser sends them (CRLF) count once, as the person saw them.
    at_limit = "w" * (limit - 2) + "\r\n" + "x"
    response = client.post(url, {**data, field: at_limit})
    assert response.status_code not in (422, 500), (form, response.status_code)
    assert "At most" not in response.content.decode()

    counts = _row_counts()
    response = client.post(url, {**data, field: "y" * (limit + 1)}, headers={"HX-Request": "true"})
    assert response.status_code == 422, (form, response.status_code)
    assert f"At most {limit:,} characters (you entered {limit + 1:,})." in response.content.decode()
    assert _row_counts() == counts


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model, field, limit",
    [
        ("PostMortem", "root_cause", 20000),
        ("CheckIn", "note", 1000),
        ("ConfigChange", "reason", 1000),
        ("PercentRequest", "decision_note", 1000),
    ],
)
def test_the_database_refuses_an_overlong_text_from_anywhere(edge, tech_lead, model, field, limit):
    from django.db import IntegrityError, connection, transaction

    from tests.test_decisions import observing

    assert connection.vendor == "postgresql"
    run = observing(make_production_at_b2a(edge))
    rows = {
        "PostMortem": lambda: _post_mortem(run, tech_lead),
        "CheckIn": lambda: run.check_ins.first(),
        "ConfigChange": lambda: ConfigChange.objects.filter(
            environment=configured_environment(edge, name="preview")
        ).first(),
        "PercentRequest": lambda: b2b_request(run.rollout.environment, tech_lead, base_version=1),
    }
    row = rows[model]()
    type(row).objects.filter(pk=row.pk).update(**{field: "z" * limit})
    with pytest.raises(IntegrityError, match=f"{model.lower()}_{field}_length"):
        with transaction.atomic():
            type(row).objects.filter(pk=row.pk).update(**{field: "z" * (limit + 1)})


@pytest.mark.django_db
def test_a_post_mortem_save_writes_a_bounded_audit_entry(edge, tech_lead):
    from tests.test_decisions import observing

    record = _post_mortem(observing(make_production_at_b2a(edge)), tech_lead)
    texts = {"root_cause": "r" * 20000, "fix_plan": "f\n" * 10000, "timeline": "t" * 20000}
    response = client_for(tech_lead).post(f"/post-mortems/{record.public_id}/", texts)
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.root_cause == texts["root_cause"]
    entry = AuditEntry.objects.get(action="postmortem.updated")
    size = len(json.dumps([entry.before, entry.after, entry.detail, entry.reason]))
    # 60,000 characters saved; the entry keeps a start, a length and a digest of each.
    assert size < 10_000, size
    assert entry.after["root_cause"]["characters"] == 20000
    assert entry.after["root_cause"]["start"] == "r" * 300
    assert "+rrrr" in entry.detail


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_a_three_megabyte_post_is_told_the_limit_and_writes_nothing(edge, tech_lead, htmx):
    from tests.test_decisions import observing

    record = _post_mortem(observing(make_production_at_b2a(edge)), tech_lead)
    before = {**_row_counts(), "audit": AuditEntry.objects.count()}
    headers = {"HX-Request": "true"} if htmx else {}
    response = client_for(tech_lead).post(
        f"/post-mortems/{record.public_id}/", {"root_cause": "x" * 3_000_000}, headers=headers
    )
    assert response.status_code == 413
    text = response.content.decode()
    assert "over the limit of 2,621,440 bytes (2.5 MB)" in text
    if htmx:
        assert response["Content-Type"].startswith("text/plain") and len(text) < 300
    else:
        assert "<h1>What you sent is too large</h1>" in text
    assert {**_row_counts(), "audit": AuditEntry.objects.count()} == before
    record.refresh_from_db()
    assert record.root_cause == ""


@pytest.mark.django_db
def test_a_form_with_too_many_fields_is_told_the_limit(edge, devops):
    environment = configured_environment(edge)
    fields = {f"field{number}": "1" for number in range(1001)}
    response = client_for(devops).post(
        reverse("rollout:emergency_stop", args=[environment.public_id]), fields
    )
    assert response.status_code == 400
    assert "more than 1,000 fields" in response.content.decode()
    assert DesiredConfig.objects.get(environment=environment).version == 1


def test_the_catalogue_is_at_least_sixty_cases():
    count = (
        len(LOGPUSH_LINES)
        + len(QA_BODIES)
        + len(KV_VALUES)
        + len(HEADERS)
        + len(PERCENT_POSTS)
        + len(AUDIT_FILTERS)
        + len(COMMANDS)
        + len(DECISION_POSTS)
        + len(TEXT_LIMITS)
        + 1
    )
    assert count >= 60
