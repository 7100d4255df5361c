"""The stand-in's Cloudflare KV API, over real HTTP: envelope, errors, limits, scripted faults."""

import asyncio
import time

import httpx
import pytest

from edge_standin import Settings, create_app
from tests.support.edge import EdgeStandIn

NAMESPACES = {"preview": "ns-preview-kvapi", "production": "ns-production-kvapi"}
CONFIG = b'{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":false,"note":"\xc3\xa4"}'


@pytest.fixture(scope="module")
def standin():
    with EdgeStandIn(namespaces=NAMESPACES, propagation_delay=0) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_state(standin):
    standin.reset(values=True)
    yield
    standin.knobs(api_rate_limit=1200, kv_faults=[], kv_fault_rule=None)


@pytest.fixture
def api(standin):
    with httpx.Client(headers=standin.api_headers, timeout=5) as client:
        yield client


def namespace_url(standin, namespace_id, account=None):
    account = account or standin.account
    return f"{standin.api_base_url}/accounts/{account}/storage/kv/namespaces/{namespace_id}"


def error_of(response):
    body = response.json()
    assert body["success"] is False
    assert body["result"] is None
    return body["errors"][0]


# --- auth and lookups -------------------------------------------------------------------------


def test_verify_token(standin, api):
    response = api.get(f"{standin.api_base_url}/user/tokens/verify")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["errors"] == [] and body["messages"] == []
    assert body["result"]["status"] == "active"
    assert body["result"]["id"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic ZGVtbzpkZW1v"}],
    ids=["missing", "wrong-token", "not-bearer"],
)
def test_calls_without_the_right_token_are_403(standin, headers):
    for url in (f"{standin.api_base_url}/user/tokens/verify", standin.kv_url("preview")):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 403
        assert error_of(response) == {"code": 10000, "message": "Authentication error"}


def test_namespace_details(standin, api):
    response = api.get(namespace_url(standin, NAMESPACES["preview"]))
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["id"] == NAMESPACES["preview"]
    assert result["title"]
    assert result["supports_url_encoding"] is True


@pytest.mark.parametrize("where", ["unknown-namespace", "unknown-account"])
def test_unknown_namespace_or_account_is_404_10013(standin, api, where):
    if where == "unknown-namespace":
        base = namespace_url(standin, "no-such-namespace")
    else:
        base = namespace_url(standin, NAMESPACES["preview"], account="someone-else")
    for response in (api.get(base), api.get(f"{base}/values/config")):
        assert response.status_code == 404
        assert error_of(response) == {"code": 10013, "message": "namespace not found"}


def test_missing_key_is_404_10009(standin, api):
    response = api.get(standin.kv_url("preview"))
    assert response.status_code == 404
    assert error_of(response) == {"code": 10009, "message": "get: 'key not found'"}


def test_unknown_api_route_is_404_envelope(standin, api):
    response = api.get(f"{standin.api_base_url}/zones")
    assert response.status_code == 404
    assert error_of(response)["code"] == 7003


# --- values -----------------------------------------------------------------------------------


def test_put_then_get_returns_the_raw_bytes(standin, api):
    put = api.put(standin.kv_url("preview"), content=CONFIG)
    assert put.status_code == 200
    assert put.json() == {"success": True, "errors": [], "messages": [], "result": {}}

    get = api.get(standin.kv_url("preview"))
    assert get.status_code == 200
    assert get.content == CONFIG
    assert get.headers["content-type"] == "application/octet-stream"
    assert api.get(standin.kv_url("production")).status_code == 404  # namespaces are separate


def test_delete_removes_the_key(standin, api):
    api.put(standin.kv_url("preview"), content=CONFIG)
    assert api.delete(standin.kv_url("preview")).status_code == 200
    assert api.get(standin.kv_url("preview")).status_code == 404


def test_writing_one_key_twice_within_a_second_is_429(standin, api):
    assert api.put(standin.kv_url("preview"), content=b"first").status_code == 200
    second = api.put(standin.kv_url("preview"), content=b"second")
    assert second.status_code == 429
    assert error_of(second)["code"] == 10022
    assert int(second.headers["retry-after"]) >= 1
    assert standin.kv_value("preview") == "first"
    assert api.put(standin.kv_url("preview", key="other"), content=b"x").status_code == 200

    time.sleep(1.05)
    assert api.put(standin.kv_url("preview"), content=b"third").status_code == 200
    assert standin.kv_value("preview") == "third"


def test_api_wide_limit_answers_429_with_retry_after(standin, api):
    standin.knobs(api_rate_limit=3)
    for _ in range(3):
        assert api.get(f"{standin.api_base_url}/user/tokens/verify").status_code == 200
    refused = api.get(standin.kv_url("preview"))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 300
    assert error_of(refused)["code"] == 971
    assert standin.state()["counters"]["kv_rate_limited"] == 1


def test_every_call_is_logged(standin, api):
    api.put(standin.kv_url("preview"), content=CONFIG)
    api.get(standin.kv_url("preview"))
    httpx.get(standin.kv_url("preview"))  # no token: logged too

    entries = standin.requests()
    assert [(e["method"], e["status"]) for e in entries] == [
        ("PUT", 200),
        ("GET", 200),
        ("GET", 403),
    ]
    put = standin.requests("PUT")[0]
    assert put["body"] == CONFIG.decode()
    assert put["path"].endswith(f"/namespaces/{NAMESPACES['preview']}/values/config")
    assert put["time"] > 0
    assert standin.requests(since=2) == entries[2:]
    assert standin.state()["counters"]["kv_calls"] == {"PUT": 1, "GET": 2}


def test_external_writes_bypass_the_api(standin):
    standin.put_external("preview", "written by wrangler")
    assert standin.kv_value("preview") == "written by wrangler"
    assert standin.requests("PUT") == []
    config_writes = standin.state()["namespaces"][NAMESPACES["preview"]]["config_writes"]
    assert config_writes[-1]["source"] == "external"
    standin.delete_external("preview")
    assert standin.kv_value("preview") is None


# --- scripted faults --------------------------------------------------------------------------


def test_scripted_429_then_success(standin, api):
    standin.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 1}])
    first = api.put(standin.kv_url("preview"), content=CONFIG)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "1"
    second = api.put(standin.kv_url("preview"), content=CONFIG)
    assert second.status_code == 200
    assert standin.kv_value("preview") == CONFIG.decode()
    assert [e["status"] for e in standin.requests("PUT")] == [429, 200]


def test_scripted_faults_are_consumed_in_order_by_matching_calls(standin, api):
    standin.knobs(
        kv_faults=[
            {"method": "PUT", "status": 500},
            {"method": "*", "status": 503, "body": "upstream broke"},
        ]
    )
    assert api.get(standin.kv_url("preview")).status_code == 503  # the first fault is PUT only
    failed = api.put(standin.kv_url("preview"), content=CONFIG)
    assert failed.status_code == 500
    assert failed.json()["success"] is False
    assert standin.state()["kv_faults"] == []
    assert api.put(standin.kv_url("preview"), content=CONFIG).status_code == 200


def test_scripted_body_is_answered_raw(standin, api):
    standin.knobs(kv_faults=[{"method": "GET", "status": 500, "body": "upstream broke"}])
    response = api.get(standin.kv_url("preview"))
    assert response.status_code == 500
    assert response.text == "upstream broke"


def test_hang_fault_makes_the_client_time_out(standin, api):
    api.put(standin.kv_url("preview"), content=CONFIG)
    standin.knobs(kv_faults=[{"method": "GET", "hang": 1.0}])
    with pytest.raises(httpx.ReadTimeout):
        api.get(standin.kv_url("preview"), timeout=0.3)
    assert api.get(standin.kv_url("preview")).content == CONFIG


def test_close_fault_drops_the_connection(standin, api):
    standin.knobs(kv_faults=[{"method": "PUT", "close": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        api.put(standin.kv_url("preview"), content=CONFIG)
    assert standin.kv_value("preview") is None
    assert standin.requests("PUT")[0]["fault"] == "close"
    assert api.put(standin.kv_url("preview"), content=CONFIG).status_code == 200


def test_fault_rule_persists_until_cleared(standin, api):
    standin.knobs(kv_fault_rule={"method": "GET", "status": 503, "retry_after": 2})
    for _ in range(3):
        response = api.get(standin.kv_url("preview"))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
    assert api.put(standin.kv_url("preview"), content=CONFIG).status_code == 200
    standin.knobs(kv_fault_rule=None)
    assert api.get(standin.kv_url("preview")).status_code == 200


def test_bad_knobs_are_refused_and_change_nothing(standin):
    before = standin.state()["settings"]
    for knobs in (
        {"api_rate_limit": 5, "no_such_knob": 1},
        {"api_rate_limit": 5, "kv_faults": [{"method": "GET"}]},
        {"api_rate_limit": "many"},
    ):
        response = standin.client.post("/_standin/knobs", json=knobs)
        assert response.status_code == 400
    assert standin.state()["settings"] == before


def test_in_process_app_answers_502_for_a_dropped_connection():
    """create_app() works without a server; with no socket to close, "close" becomes a 502."""
    app = create_app(Settings(namespaces={"preview": "ns-in-process"}, seed_config=True))
    url = "/client/v4/accounts/demo-account/storage/kv/namespaces/ns-in-process/values/config"

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer demo-token"}
        async with httpx.AsyncClient(transport=transport, base_url="http://standin") as client:
            assert b'"canary_tag":"B2a"' in (await client.get(url, headers=headers)).content
            faults = {"kv_faults": [{"method": "GET", "close": True}]}
            await client.post("/_standin/knobs", json=faults)
            assert (await client.get(url, headers=headers)).status_code == 502

    asyncio.run(scenario())
