"""The stand-in's state file: KV and traffic knobs survive a restart of the process."""

import httpx

from tests.support.edge import EdgeStandIn

NAMESPACES = {"preview": "ns-preview-state", "production": "ns-production-state"}
CONFIG = '{"canary_percent":15,"canary_tag":"B2b","emergency_proxy":false}'


def put(standin, env, raw):
    response = httpx.put(standin.kv_url(env), headers=standin.api_headers, content=raw)
    response.raise_for_status()


def test_kv_values_and_traffic_knobs_survive_a_restart(tmp_path):
    state_file = tmp_path / "edge-state.json"
    with EdgeStandIn(namespaces=NAMESPACES, propagation_delay=30, state_file=state_file) as first:
        put(first, "production", CONFIG)
        first.put_external("preview", b'{"canary_percent":5,"note":"\xff"}')
        first.put_external("preview", "other", key="notes")
        first.client.post(
            "/_standin/traffic", json={"native": {"latency_ms": 125}}
        ).raise_for_status()
    assert state_file.exists()

    with EdgeStandIn(namespaces=NAMESPACES, propagation_delay=30, state_file=state_file) as again:
        assert again.kv_value("production") == CONFIG
        # Written before the restart, so the edge sees it at once, not after the delay.
        assert again.visible_config("production") == CONFIG
        assert again.client.get("/production/api/qa").json()["canary"]["percent"] == 15
        preview = again.state()["namespaces"][again.namespace_id("preview")]
        assert preview["keys"] == ["config", "notes"]
        assert preview["config_writes"][-1]["source"] == "external"
        raw = httpx.get(again.kv_url("preview"), headers=again.api_headers).content
        assert raw == b'{"canary_percent":5,"note":"\xff"}'
        traffic = again.client.get("/_standin/traffic").json()["traffic"]
        assert traffic["preview"]["native"]["latency_ms"] == 125


def test_without_a_state_file_a_restart_forgets():
    with EdgeStandIn(namespaces=NAMESPACES) as first:
        put(first, "production", CONFIG)
    with EdgeStandIn(namespaces=NAMESPACES) as again:
        assert again.kv_value("production") is None
