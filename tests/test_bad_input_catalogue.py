"""Every malformed input we know of, at every entry point, in one table (issue 8): each gives a
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


GOOD_BODY = {
    "status": "healthy",
    "environment": "production",
    "canary": {
        "percent": 10,
        "tag": "B2a",
        "emergency_proxy": False,
        "cohort": "native",
        "reason": "sampled",
    },
    "health": {"database": "ok", "r2_bucket": "ok", "proxy_origin": "ok"},
}
QA_BODIES = [
    ("no status", {k: v for k, v in GOOD_BODY.items() if k != "status"}, "lacks 'status'"),
    ("no canary", {k: v for k, v in GOOD_BODY.items() if k != "canary"}, "lacks 'canary'"),
    ("canary a list", {**GOOD_BODY, "canary": []}, "expected an object"),
    ("health null", {**GOOD_BODY, "health": None}, "expected an object"),
    (
        "percent text",
        {**GOOD_BODY, "canary": {**GOOD_BODY["canary"], "percent": "10"}},
        "canary.percent",
    ),
    (
        "percent 101",
        {**GOOD_BODY, "canary": {**GOOD_BODY["canary"], "percent": 101}},
        "canary.percent",
    ),
    (
        "emergency text",
        {**GOOD_BODY, "canary": {**GOOD_BODY["canary"], "emergency_proxy": "no"}},
        "emergency_proxy",
    ),
    (
        "unknown cohort",
        {**GOOD_BODY, "canary": {**GOOD_BODY["canary"], "cohort": "canary"}},
        "canary.cohort",
    ),
    ("other environment", {**GOOD_BODY, "environment": "preview"}, "was probed"),
    (
        "component error",
        {**GOOD_BODY, "health": {**GOOD_BODY["health"], "database": "error: timeout"}},
        "database reports error: timeout",
    ),
    (
        "component odd",
        {**GOOD_BODY, "health": {**GOOD_BODY["health"], "r2_bucket": "meh"}},
        "health.r2_bucket",
    ),
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
    ("reason too long", {"reason": "x" * 1001}, "at most 1000 characters"),
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
        "4,000",
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
    from tests.test_decisions import observing, production_at_b2a

    run = observing(production_at_b2a(edge))
    data = {"evidence_digest": DIGEST, **data} if action == "sign" else data
    response = client_for(tech_lead).post(f"/phases/{run.public_id}/{action}/", data)
    assert response.status_code == 422, (case, response.status_code)
    assert message in response.content.decode(), case
    assert not Signature.objects.exists() and not PhaseAttestation.objects.exists()


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
        + 1
    )
    assert count >= 60
