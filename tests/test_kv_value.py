import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.kv_value import (
    CanarySettings,
    InvalidKVValue,
    format_timestamp,
    merge,
    parse_object,
    read_settings,
)

NOW = datetime(2025, 11, 12, 14, 30, 0, 123456, tzinfo=UTC)
B2B = CanarySettings(25, "B2b", False)


def test_it_writes_the_runbook_shape():
    value = json.loads(merge(None, CanarySettings(10, "B2a", False), NOW))
    assert value == {
        "canary_percent": 10,
        "canary_tag": "B2a",
        "emergency_proxy": False,
        "last_updated": "2025-11-12T14:30:00Z",
    }


def test_it_keeps_keys_it_does_not_own():
    existing = '{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":false,"owner":"team-x"}'
    value = json.loads(merge(existing, B2B, NOW))
    assert value["owner"] == "team-x"
    assert value["canary_percent"] == 25 and value["canary_tag"] == "B2b"


def test_timestamps_are_utc_seconds_with_z():
    berlin = datetime.fromisoformat("2025-03-30T03:30:00.999+02:00")
    assert format_timestamp(berlin) == "2025-03-30T01:30:00Z"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b"\xff\xfe", "not UTF-8"),
        ("null", "not an object"),
    ],
)
def test_unmergeable_values_are_refused_with_a_reason(raw, message):
    with pytest.raises(InvalidKVValue, match=message):
        parse_object(raw)


@pytest.mark.parametrize(
    "raw",
    [
        '{"canary_percent":true,"canary_tag":"B2a","emergency_proxy":false}',
        '{"canary_percent":101,"canary_tag":"B2a","emergency_proxy":false}',
        '{"canary_percent":-1,"canary_tag":"B2a","emergency_proxy":false}',
        '{"canary_percent":"10","canary_tag":"B2a","emergency_proxy":false}',
        '{"canary_percent":10.5,"canary_tag":"B2a","emergency_proxy":false}',
        '{"canary_percent":10,"canary_tag":null,"emergency_proxy":false}',
        '{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":"false"}',
        '{"canary_tag":"B2a","emergency_proxy":false}',
        "garbage",
    ],
)
def test_mistyped_settings_read_as_none(raw):
    assert read_settings(raw) is None


def test_missing_key_reads_as_empty():
    assert parse_object(None) == {}
    assert read_settings(None) is None


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=6),
    percent=st.integers(0, 100),
    tag=st.text(min_size=1, max_size=10),
    emergency=st.booleans(),
)
def test_merge_keeps_every_foreign_key_and_sets_ours(extra, percent, tag, emergency):
    existing = json.dumps(extra)
    desired = CanarySettings(percent, tag, emergency)
    merged = json.loads(merge(existing, desired, NOW))
    for key, value in extra.items():
        if key not in ("canary_percent", "canary_tag", "emergency_proxy", "last_updated"):
            assert merged[key] == value
    assert read_settings(json.dumps(merged)) == desired
    assert merged["last_updated"] == "2025-11-12T14:30:00Z"
