"""The stand-in's edge worker, over real HTTP: cohort rules, header, cookie, health, rate limit."""

import json
import time

import httpx
import pytest

from tests.support.edge import EdgeStandIn

NAMESPACES = {"preview": "ns-preview-worker", "production": "ns-production-worker"}
EXEMPT_TOKEN = "monitoring-secret"
COOKIE_ATTRIBUTES = "Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None"


@pytest.fixture(scope="module")
def standin():
    with EdgeStandIn(
        namespaces=NAMESPACES, propagation_delay=0, exempt_token=EXEMPT_TOKEN, seed_config=True
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_state(standin):
    standin.reset(values=True)
    yield
    standin.knobs(propagation_delay=0, rate_limit=10, rate_window=10)


@pytest.fixture
def http():
    with httpx.Client(timeout=5) as client:
        yield client


def set_config(standin, env="preview", percent=10, tag="B2a", emergency=False):
    value = {
        "canary_percent": percent,
        "canary_tag": tag,
        "emergency_proxy": emergency,
        "last_updated": "2025-11-12T14:30:00Z",
    }
    standin.put_external(env, json.dumps(value))


def probe(http, url, cookie=None, **headers):
    """One request as a client without a cookie jar; `cookie` is the _canary_cohort it holds."""
    http.cookies.clear()
    if cookie:
        headers["Cookie"] = f"_canary_cohort={cookie}"
    return http.get(url, headers=headers)


def canary_of(response):
    return response.json()["canary"]


def cohorts_of_fresh_clients(standin, http, count):
    """Cohorts drawn for `count` new clients, each from its own address (so none is limited)."""
    cohorts = []
    for n in range(count):
        address = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        response = probe(http, standin.qa_url("preview"), **{"X-Forwarded-For": address})
        assert canary_of(response)["reason"] == "sampled"
        cohorts.append(canary_of(response)["cohort"])
    return cohorts


# --- the /api/qa document ---------------------------------------------------------------------


def test_qa_document_and_headers(standin, http):
    response = probe(http, standin.qa_url("preview"))
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "environment": "preview",
        "canary": {
            "percent": 0,
            "tag": "B2a",
            "emergency_proxy": False,
            "cohort": "proxy",
            "reason": "sampled",
        },
        "health": {"database": "ok", "r2_bucket": "ok", "proxy_origin": "ok"},
    }
    assert response.headers["x-pix-canary"] == "1;tag=B2a;cohort=proxy;reason=sampled"
    assert response.headers["set-cookie"] == f"_canary_cohort=proxy; {COOKIE_ATTRIBUTES}"


def test_each_environment_reads_its_own_namespace(standin, http):
    set_config(standin, "production", percent=100, tag="B2b")
    assert canary_of(probe(http, standin.qa_url("production")))["tag"] == "B2b"
    assert canary_of(probe(http, standin.qa_url("preview")))["tag"] == "B2a"
    assert probe(http, standin.qa_url("staging")).status_code == 404


@pytest.mark.parametrize("stored", [None, "not json", '["a list"]', '{"canary_percent":"10"}'])
def test_missing_or_unusable_config_is_degraded(standin, http, stored):
    if stored is None:
        standin.delete_external("preview")
    else:
        standin.put_external("preview", stored)
    body = probe(http, standin.qa_url("preview")).json()
    assert body["status"] == "degraded"
    assert body["canary"] == {
        "percent": 0,
        "tag": "",
        "emergency_proxy": False,
        "cohort": "proxy",
        "reason": "sampled",
    }


def test_other_paths_carry_the_same_headers(standin, http):
    set_config(standin, percent=100, tag="B2b")
    response = probe(http, standin.edge_url("preview", "/listings/42"))
    assert response.status_code == 200
    assert response.json()["path"] == "/listings/42"
    assert response.json()["cohort"] == "native"
    assert response.headers["x-pix-canary"] == "1;tag=B2b;cohort=native;reason=sampled"
    assert response.headers["set-cookie"].startswith("_canary_cohort=native;")


# --- cohort rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("cookie", [None, "native"])
def test_emergency_beats_header_and_cookie(standin, http, cookie):
    set_config(standin, percent=100, emergency=True)
    response = probe(http, standin.qa_url("preview"), cookie=cookie, **{"X-Canary": "1"})
    assert canary_of(response)["cohort"] == "proxy"
    assert canary_of(response)["reason"] == "emergency"
    assert canary_of(response)["emergency_proxy"] is True
    assert response.headers["x-pix-canary"] == "1;tag=B2a;cohort=proxy;reason=emergency"
    assert "set-cookie" not in response.headers


def test_header_forces_native_even_over_a_proxy_cookie(standin, http):
    set_config(standin, percent=0)
    for cookie in (None, "proxy"):
        response = probe(http, standin.qa_url("preview"), cookie=cookie, **{"X-Canary": "1"})
        assert canary_of(response)["cohort"] == "native"
        assert canary_of(response)["reason"] == "header"
        assert response.headers["set-cookie"] == f"_canary_cohort=native; {COOKIE_ATTRIBUTES}"


def test_sticky_cookies_outlive_a_percent_change(standin, http):
    set_config(standin, percent=0)
    native = probe(http, standin.qa_url("preview"), cookie="native")
    assert (canary_of(native)["cohort"], canary_of(native)["reason"]) == ("native", "cookie")
    assert native.headers["set-cookie"] == f"_canary_cohort=native; {COOKIE_ATTRIBUTES}"

    set_config(standin, percent=100)
    proxy = probe(http, standin.qa_url("preview"), cookie="proxy")
    assert (canary_of(proxy)["cohort"], canary_of(proxy)["reason"]) == ("proxy", "cookie")


def test_an_unknown_cookie_value_is_ignored(standin, http):
    set_config(standin, percent=100)
    response = probe(http, standin.qa_url("preview"), cookie="Native")
    assert (canary_of(response)["cohort"], canary_of(response)["reason"]) == ("native", "sampled")


@pytest.mark.parametrize(("percent", "expected"), [(0, "proxy"), (100, "native")])
def test_sampling_at_0_and_100_percent_is_exact(standin, http, percent, expected):
    set_config(standin, percent=percent)
    assert set(cohorts_of_fresh_clients(standin, http, 50)) == {expected}


def test_sampling_at_50_percent_is_about_half(standin, http):
    set_config(standin, percent=50)
    cohorts = cohorts_of_fresh_clients(standin, http, 400)
    assert 140 <= cohorts.count("native") <= 260  # +-6 standard deviations
    counters = standin.state()["counters"]["edge"]["preview"]
    assert counters["native"] + counters["proxy"] == 400


# --- propagation ------------------------------------------------------------------------------


def test_the_edge_sees_a_write_only_after_the_propagation_delay(standin, http):
    standin.knobs(propagation_delay=0.5)
    new_value = b'{"canary_percent":100,"canary_tag":"B2b","emergency_proxy":false}'
    written = httpx.put(standin.kv_url("preview"), content=new_value, headers=standin.api_headers)
    assert written.status_code == 200
    assert standin.kv_value("preview") == new_value.decode()  # the API reads its own write

    assert canary_of(probe(http, standin.qa_url("preview")))["tag"] == "B2a"
    assert standin.visible_config("preview") != new_value.decode()
    time.sleep(0.6)
    assert canary_of(probe(http, standin.qa_url("preview")))["tag"] == "B2b"
    assert standin.visible_config("preview") == new_value.decode()


# --- knobs ------------------------------------------------------------------------------------


def test_health_error_knob_degrades_one_environment(standin, http):
    standin.knobs(health={"preview": {"database": "connection timeout"}})
    preview = probe(http, standin.qa_url("preview")).json()
    assert preview["status"] == "degraded"
    assert preview["health"] == {
        "database": "error: connection timeout",
        "r2_bucket": "ok",
        "proxy_origin": "ok",
    }
    assert probe(http, standin.qa_url("production")).json()["status"] == "healthy"

    standin.knobs(health={"preview": {"database": "ok"}})
    assert probe(http, standin.qa_url("preview")).json()["status"] == "healthy"


def test_latency_knob_delays_answers(standin, http):
    standin.knobs(latency_ms={"preview": 300})
    started = time.monotonic()
    probe(http, standin.qa_url("preview"))
    assert time.monotonic() - started >= 0.3


def test_breakers_make_the_worker_misbehave(standin, http):
    url = standin.qa_url("preview")
    set_config(standin, percent=0)
    standin.knobs(
        ignore_sticky={"preview": True},
        ignore_header_override={"preview": True},
        cookie_attributes={"preview": "Path=/"},
    )
    sticky = probe(http, url, cookie="native")
    assert (canary_of(sticky)["cohort"], canary_of(sticky)["reason"]) == ("proxy", "sampled")
    assert sticky.headers["set-cookie"] == "_canary_cohort=proxy; Path=/"
    header = probe(http, url, **{"X-Canary": "1"})
    assert canary_of(header)["reason"] == "sampled"

    set_config(standin, percent=100, emergency=True)
    standin.knobs(ignore_emergency=True)  # a plain value applies to every environment
    for env in NAMESPACES:
        assert canary_of(probe(http, standin.qa_url(env)))["reason"] == "sampled"

    standin.reset()
    assert canary_of(probe(http, url))["reason"] == "emergency"


# --- rate limit -------------------------------------------------------------------------------


def test_the_eleventh_request_in_the_window_is_429(standin, http):
    url = standin.qa_url("preview")
    for _ in range(10):
        assert probe(http, url).status_code == 200
    refused = probe(http, url)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "x-pix-canary" not in refused.headers
    assert "set-cookie" not in refused.headers
    assert refused.json()["retry_after"] == int(refused.headers["retry-after"])

    assert probe(http, url, **{"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}).status_code == 200
    assert probe(http, url, **{"X-Monitoring-Token": EXEMPT_TOKEN}).status_code == 200
    assert probe(http, url, **{"X-Monitoring-Token": "guess"}).status_code == 429
    assert probe(http, standin.qa_url("production")).status_code == 200  # its own worker
    assert standin.state()["counters"]["edge"]["preview"]["rate_limited"] == 2


def test_the_window_slides(standin, http):
    standin.knobs(rate_limit=2, rate_window=0.5)
    url = standin.qa_url("preview")
    assert [probe(http, url).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.55)
    assert probe(http, url).status_code == 200


def test_rate_limit_zero_turns_it_off(standin, http):
    standin.knobs(rate_limit=0)
    assert {probe(http, standin.qa_url("preview")).status_code for _ in range(25)} == {200}
