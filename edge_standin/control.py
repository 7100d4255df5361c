"""Control API under /_standin: state, knobs, out-of-band KV writes, reset, the KV request log.

No authentication: this is a test and demo tool, bound to localhost.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import CONFIG_KEY, KnobError, StandIn


def _standin(request: Request) -> StandIn:
    return request.app.state.standin


async def _json_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise KnobError(f"body is not JSON: {exc}") from exc


def _bad_request(exc: KnobError) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def state(request: Request) -> Response:
    return JSONResponse(_standin(request).snapshot())


async def knobs(request: Request) -> Response:
    standin = _standin(request)
    if request.method == "POST":
        try:
            standin.apply_knobs(await _json_body(request))
        except KnobError as exc:
            return _bad_request(exc)
    return JSONResponse(standin.knob_view())


async def external_write(request: Request) -> Response:
    """Like `wrangler kv key put` during an incident: bypasses the API, its log and its limits."""
    standin = _standin(request)
    namespace = standin.find_namespace(request.path_params["namespace"])
    if namespace is None:
        return JSONResponse({"error": "unknown namespace"}, status_code=404)
    key = request.query_params.get("key", CONFIG_KEY)
    value = None if request.method == "DELETE" else await request.body()
    namespace.write(key, value, "external")
    return JSONResponse({"namespace": namespace.id, "key": key, "deleted": value is None})


async def reset(request: Request) -> Response:
    try:
        body = await _json_body(request)
    except KnobError as exc:
        return _bad_request(exc)
    values = isinstance(body, dict) and bool(body.get("values", False))
    _standin(request).reset(values=values)
    if values:
        request.app.state.workers.reset()
    return JSONResponse({"reset": True, "values": values})


async def requests(request: Request) -> Response:
    """KV API calls from index `since` on (the count a caller has already read)."""
    log = _standin(request).request_log
    try:
        since = max(0, int(request.query_params.get("since", "0")))
    except ValueError:
        return JSONResponse({"error": "since must be a whole number"}, status_code=400)
    return JSONResponse({"requests": log[since:], "next": len(log)})


async def edge_requests(request: Request) -> Response:
    """Requests to the edge workers (with their headers) from index `since` on."""
    standin = _standin(request)
    try:
        since = max(0, int(request.query_params.get("since", "0")))
    except ValueError:
        return JSONResponse({"error": "since must be a whole number"}, status_code=400)
    return JSONResponse(
        {"requests": standin.edge_requests(since), "next": standin.edge_requests_seen}
    )


def control_routes() -> list[Route]:
    return [
        Route("/_standin/state", state, methods=["GET"]),
        Route("/_standin/knobs", knobs, methods=["GET", "POST"]),
        Route("/_standin/kv/{namespace}", external_write, methods=["POST", "PUT", "DELETE"]),
        Route("/_standin/reset", reset, methods=["POST"]),
        Route("/_standin/requests", requests, methods=["GET"]),
        Route("/_standin/edge-requests", edge_requests, methods=["GET"]),
    ]
