"""The edge stand-in's Logpush traffic: knobs per cohort, files on demand, routing by KV."""

import gzip
import json
import random

import pytest

from edge_standin.logpush import LogpushState, Routing, make_batch
from tests.conftest import NAMESPACES

pytestmark = pytest.mark.django_db


def write(edge, tmp_path, **body):
    response = edge.client.post(
        "/_standin/logpush/write", json={"env": "production", "directory": str(tmp_path), **body}
    )
    return response


def set_config(edge, percent=10, emergency=False):
    value = {"canary_percent": percent, "canary_tag": "B2a", "emergency_proxy": emergency}
    edge.put_external(NAMESPACES["production"], json.dumps(value))


def test_files_follow_the_knobs_and_the_edge_config(edge, tmp_path):
    set_config(edge, percent=20)
    knobs = edge.client.post(
        "/_standin/traffic",
        json={
            "requests_per_minute": 1000,
            "timestamp_format": "rfc3339",
            "production": {"native": {"error_rate": 0.5, "upload_errors_per_minute": 3}},
        },
    ).json()
    assert knobs["traffic"]["production"]["native"]["error_rate"] == 0.5
    assert knobs["traffic"]["preview"]["native"]["error_rate"] == 0.002
    answer = write(edge, tmp_path, minutes=2, end=1_762_956_120).json()
    native, proxy = answer["requests"]["native"], answer["requests"]["proxy"]
    assert 300 < native["requests"] < 500 and 1500 < proxy["requests"] < 1700
    assert 0.4 < native["errors_5xx"] / native["requests"] < 0.6
    assert 4 <= answer["upload_errors"] <= 8
    first = answer["files"][0]
    assert first["http_requests"].startswith("b2a/http_requests/20251112/20251112T140000Z_")
    path = tmp_path / "production" / first["http_requests"]
    record = json.loads(gzip.decompress(path.read_bytes()).splitlines()[0])
    assert record["EdgeStartTimestamp"].endswith("Z")
    assert record["ResponseHeaders"]["x-pix-canary"].startswith("1;tag=B2a;cohort=")
    assert not list(tmp_path.rglob(".*.partial"))


def test_the_emergency_flag_sends_everything_to_proxy(edge, tmp_path):
    set_config(edge, percent=50, emergency=True)
    answer = write(edge, tmp_path, minutes=1).json()
    assert answer["requests"]["native"]["requests"] == 0
    assert answer["requests"]["proxy"]["requests"] > 0


def test_bad_knobs_change_nothing(edge, tmp_path):
    before = edge.client.get("/_standin/traffic").json()
    for bad in (
        {"native": {"error_rate": 2}},
        {"production": {"native": {"nope": 1}}},
        {"timestamp_format": "ticks"},
        {"interval_seconds": 0},
        {"requests_per_minute": 10, "native": {"latency_ms": -1}},
    ):
        assert edge.client.post("/_standin/traffic", json=bad).status_code == 400
    assert edge.client.get("/_standin/traffic").json() == before
    assert write(edge, tmp_path, env="staging").status_code == 400
    assert (
        edge.client.post("/_standin/logpush/write", json={"env": "production"}).status_code == 400
    )


def test_reset_restores_the_default_traffic(edge):
    edge.client.post("/_standin/traffic", json={"requests_per_minute": 5})
    edge.reset()
    assert (
        edge.client.get("/_standin/traffic").json()["traffic"]["production"]["requests_per_minute"]
        == 60
    )


def test_a_knob_turned_between_two_files_changes_the_requests_from_that_moment():
    """The loop's next file holds the old knobs' requests before the turn, the new ones' after:
    a fault starts in the middle of a Logpush file, as a real one would."""
    state = LogpushState(["production"])
    state.apply({"production": {"requests_per_minute": 6000, "native": {"error_rate": 0}}}, 900)
    state.apply({"production": {"native": {"error_rate": 1}}}, 1030)
    earlier = state.knobs_since("production", 1000)
    assert [until for until, _ in earlier] == [1030]  # the knobs replaced before 1000 are gone
    batch = make_batch(
        random.Random(3),
        1000,
        1060,
        Routing(50, "B2a", False),
        state.traffic["production"],
        earlier=earlier,
    )
    lines = [json.loads(line) for line in gzip.decompress(batch.http_body).splitlines()]
    native = [line for line in lines if "cohort=native" in line["ResponseHeaders"]["x-pix-canary"]]
    before = [line for line in native if line["EdgeStartTimestamp"] < 1030 * 10**9]
    after = [line for line in native if line["EdgeStartTimestamp"] >= 1030 * 10**9]
    assert len(before) > 1000 and len(after) > 1000
    assert not any(line["EdgeResponseStatus"] >= 500 for line in before)
    assert all(line["EdgeResponseStatus"] >= 500 for line in after)
