"""Times and values as people read them: in the viewer's own time zone with UTC in a tooltip,
never a raw ISO string, microseconds or a Python dict; JSON and CSV exports keep ISO 8601."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from rollout.models import AuditEntry, ConfigChange, Preferences
from rollout.services import audit
from rollout.templatetags.audit_words import describe_change
from tests.conftest import client_for
from tests.test_pages_only_read import NOT_TRIED, NOT_TRIED_PREFIXES
from tests.test_refusals import routes, url_kwargs, world  # noqa: F401  (world is a fixture)

pytestmark = pytest.mark.django_db

ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\d\d:\d\d:\d\d\.\d{3,6}")
MACHINE_READABLE = re.compile(r'datetime="[^"]*"')
DICT_REPR = re.compile(r"\{(&#x27;|')|\[(&#x27;|')")


def html_pages(client, world):  # noqa: F811
    for name, route in routes():
        if name in NOT_TRIED or route.startswith(NOT_TRIED_PREFIXES):
            continue
        url = reverse(name, kwargs=url_kwargs(name, route, world))
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            if response.get("Content-Type", "").startswith("text/html"):
                yield url, response.content.decode()


@pytest.mark.parametrize("person", ["admin_user", "release_manager"])
def test_no_page_shows_a_raw_timestamp_or_a_python_dict(request, world, person):  # noqa: F811
    run = world["phase_run"]
    audit.record(
        action="config.percent_set",
        system="test",
        environment=world["production"],
        before={"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
        after={"canary_percent": 25, "canary_tag": "B2b", "emergency_proxy": False},
    )
    run.decisions.update(
        evidence={"incidents": [{"kind": "alert", "at": "2026-03-29T00:30:00.123456+00:00"}]}
    )
    client = client_for(request.getfixturevalue(person))
    opened = 0
    for url, page in html_pages(client, world):
        opened += 1
        shown = MACHINE_READABLE.sub("", page)
        assert not ISO_MOMENT.search(shown), f"{url}: {ISO_MOMENT.search(shown).group()}"
        assert not DICT_REPR.search(page), f"{url}: {page[DICT_REPR.search(page).start() :][:80]}"
    assert opened > 20


def test_the_audit_page_says_what_changed_in_words(production_at_b2a, admin_user):
    audit.record(
        action="config.percent_set",
        system="test",
        before={"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
        after={"canary_percent": 25, "canary_tag": "B2b", "emergency_proxy": False},
    )
    page = client_for(admin_user).get(reverse("rollout:audit")).content.decode()
    assert '<td data-label="What changed">percent 10% → 25%, tag B2a → B2b</td>' in page
    assert "canary_percent" not in page


def test_the_exports_keep_iso_8601(admin_user):
    audit.record(action="config.percent_set", system="test", after={"canary_percent": 25})
    export = client_for(admin_user).get(reverse("rollout:audit_export", args=["json"]))
    body = b"".join(export.streaming_content).decode()
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body)
    assert "canary_percent" in body


def test_a_change_is_described_as_before_and_after():
    before = {"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False}
    after = {"canary_percent": 25, "canary_tag": "B2b", "emergency_proxy": False}
    assert describe_change(before, after) == "percent 10% → 25%, tag B2a → B2b"
    assert describe_change(None, after) == "percent 25%, tag B2b, emergency stop off"
    assert describe_change({"state": "observing"}, {"state": "decision_due"}) == (
        "state observing → decision due"
    )
    rules = {"rules": {"native 5xx": {"threshold": 1.5, "enabled": True}}}
    changed = {"rules": {"native 5xx": {"threshold": 2.0, "enabled": True}}}
    assert describe_change(rules, changed) == "rules native 5xx threshold 1.5 → 2.0"
    assert describe_change(after, after) == "no change"


def first_change_at(environment, moment):
    change = ConfigChange.objects.filter(environment=environment).order_by("version").first()
    ConfigChange.objects.filter(pk=change.pk).update(requested_at=moment)


def test_each_viewer_sees_times_in_their_own_zone_with_utc_in_the_tooltip(
    production_configured, viewer, release_manager
):
    first_change_at(production_configured, datetime(2026, 1, 15, 12, 0, 5, 123456, tzinfo=UTC))
    Preferences.objects.create(user=viewer, time_zone="America/New_York")
    url = reverse("rollout:environment", args=[production_configured.public_id])

    in_new_york = client_for(viewer).get(url).content.decode()
    in_berlin = client_for(release_manager).get(url).content.decode()

    tooltip = '<time datetime="2026-01-15T12:00:05Z" title="2026-01-15 12:00:05 UTC">'
    assert f"{tooltip}2026-01-15 07:00:05 EST</time>" in in_new_york
    assert f"{tooltip}2026-01-15 13:00:05 CET</time>" in in_berlin


def test_a_window_across_the_change_to_summer_time_shows_both_offsets(world, viewer):  # noqa: F811
    run = world["phase_run"]
    type(run).objects.filter(pk=run.pk).update(
        in_effect_at=datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        window_ends_at=datetime(2026, 3, 29, 2, 30, tzinfo=UTC),
    )
    page = client_for(viewer).get(reverse("rollout:phase_run", args=[run.public_id]))
    text = page.content.decode()
    assert "2026-03-29 01:30:00 CET</time>" in text  # 00:30 UTC, winter time
    assert "2026-03-29 04:30 CEST</time>" in text  # 02:30 UTC, summer time: two hours, not three
    assert 'title="2026-03-29 02:30:00 UTC"' in text


def test_a_person_chooses_their_time_zone(viewer):
    client = client_for(viewer)
    url = reverse("rollout:preferences")
    assert "The site&#x27;s default (Europe/Berlin)" in client.get(url).content.decode()

    refused = client.post(url, {"time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422
    assert "Mars/Olympus_Mons is not a time zone we know." in refused.content.decode()
    assert not Preferences.objects.filter(user=viewer).exists()

    saved = client.post(url, {"time_zone": "Asia/Tokyo"})
    assert saved.status_code == 302
    assert Preferences.objects.get(user=viewer).time_zone == "Asia/Tokyo"
    assert " JST</time>" in client.get(url).content.decode()

    client.post(url, {"time_zone": ""})
    assert Preferences.objects.get(user=viewer).time_zone == ""
    assert re.search(r" CES?T</time>", client.get(url).content.decode())
    changes = AuditEntry.objects.filter(action="preferences.changed").order_by("id")
    assert [(e.actor, e.before, e.after) for e in changes] == [
        (viewer, {"time_zone": ""}, {"time_zone": "Asia/Tokyo"}),
        (viewer, {"time_zone": "Asia/Tokyo"}, {"time_zone": ""}),
    ]


def test_the_preview_run_form_is_filled_in_with_the_last_build(world, release_manager):  # noqa: F811
    page = client_for(release_manager).get(
        reverse("rollout:preview_suite", args=[world["preview"].public_id])
    )
    text = page.content.decode()
    assert re.search(r'name="build"[^>]*value="b1"', text, re.S)
    assert 'id="build-hint">Filled in with the build of the last run' in text
