"""The edge worker of each environment: cohort choice, X-Pix-Canary, sticky cookie, rate limit.

Served at /{env}/api/qa (the JSON health document) and at any other path under /{env}/.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import HEALTH_COMPONENTS, EdgeKnobs, StandIn

COOKIE_NAME = "_canary_cohort"
COHORTS = ("native", "proxy")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class CanaryConfig:
    percent: int = 0
    tag: str = ""
    emergency_proxy: bool = False
    valid: bool = False  # False when the key is missing or its value is not a usable config


def parse_config(raw: bytes | None) -> CanaryConfig:
    """Read the KV value the way the worker does; anything unusable falls back to the defaults."""
    if raw is None:
        return CanaryConfig()
    try:
        data = json.loads(raw)
    except ValueError:
        return CanaryConfig()
    if not isinstance(data, dict):
        return CanaryConfig()
    percent = data.get("canary_percent")
    tag = data.get("canary_tag")
    emergency = data.get("emergency_proxy")
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int)
        or not 0 <= percent <= 100
        or not isinstance(tag, str)
        or not isinstance(emergency, bool)
    ):
        return CanaryConfig()
    return CanaryConfig(percent, tag, emergency, valid=True)


def choose_cohort(
    config: CanaryConfig, request: Request, knobs: EdgeKnobs, rng: random.Random
) -> tuple[str, str]:
    """(cohort, reason) by the worker's rules, in order: emergency, header, cookie, sampling."""
    if config.emergency_proxy and not knobs.ignore_emergency:
        return "proxy", "emergency"
    if request.headers.get("x-canary", "").strip() == "1" and not knobs.ignore_header_override:
        return "native", "header"
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie in COHORTS and not knobs.ignore_sticky:
        return cookie, "cookie"
    native = rng.random() < config.percent / 100
    return ("native" if native else "proxy"), "sampled"


def client_address(request: Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "")
    first = forwarded.split(",")[0].strip()
    if first:
        return first
    return request.client.host if request.client else "unknown"


def qa_document(env: str, config: CanaryConfig, knobs: EdgeKnobs, cohort: str, reason: str) -> dict:
    health = {component: knobs.health[component] for component in HEALTH_COMPONENTS}
    healthy = config.valid and all(state == "ok" for state in health.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "environment": env,
        "canary": {
            "percent": config.percent,
            "tag": config.tag,
            "emergency_proxy": config.emergency_proxy,
            "cohort": cohort,
            "reason": reason,
        },
        "health": health,
    }


async def edge(request: Request) -> Response:
    standin: StandIn = request.app.state.standin
    env = request.path_params["env"]
    path = "/" + request.path_params.get("path", "")
    if env not in standin.edge_knobs:
        return JSONResponse({"error": "unknown environment", "environment": env}, status_code=404)
    settings = standin.settings
    counters = standin.counters["edge"][env]
    logged = standin.log_edge_request(env, request.method, path, dict(request.headers))
    token = request.headers.get("x-monitoring-token")
    exempt = settings.exempt_token is not None and token == settings.exempt_token
    if not exempt:
        client = f"{env}|{client_address(request)}"
        wait = standin.edge_limiter.admit(client, settings.rate_limit, settings.rate_window)
        if wait is not None:
            counters["rate_limited"] += 1
            logged["status"] = 429
            body = {"error": "rate limited", "retry_after": wait}
            return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})
    logged["status"] = 200

    knobs = standin.edge_knobs[env]
    if knobs.latency_ms:
        await asyncio.sleep(knobs.latency_ms / 1000)
    config = parse_config(standin.edge_config(env))
    cohort, reason = choose_cohort(config, request, knobs, standin.random)
    counters[cohort] += 1

    if path == "/api/qa":
        body = qa_document(env, config, knobs, cohort, reason)
    else:
        served_by = "native handlers" if cohort == "native" else "proxy origin"
        body = {"environment": env, "path": path, "cohort": cohort, "served_by": served_by}
    response = JSONResponse(body)
    response.headers["X-Pix-Canary"] = f"1;tag={config.tag};cohort={cohort};reason={reason}"
    if reason != "emergency":
        response.headers.append("set-cookie", f"{COOKIE_NAME}={cohort}; {knobs.cookie_attributes}")
    return response


def edge_routes() -> list[Route]:
    return [
        Route("/{env}", edge, methods=ALL_METHODS),
        Route("/{env}/{path:path}", edge, methods=ALL_METHODS),
    ]
