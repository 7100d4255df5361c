"""The Cloudflare API v4 subset the dashboard uses for Workers KV, served under /client/v4."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .state import SAME_KEY_WRITE_INTERVAL, KvFault, Namespace, StandIn

API_PREFIX = "/client/v4"
# Scope key under which StandInApp puts a callable that closes the client connection.
DROP_CONNECTION = "edge_standin.drop_connection"
TOKEN_ID = "ed9e5a6b1c2d4e3f8a7b6c5d4e3f2a1b"
THROTTLED = (971, "Please wait and consider throttling your request speed")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

Handler = Callable[[Request, StandIn, bytes | None], Awaitable[Response]]


def envelope(result: object = None, errors: list[dict] | None = None) -> dict:
    errors = errors or []
    return {"success": not errors, "errors": errors, "messages": [], "result": result}


def api_error(status: int, code: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    body = envelope(None, [{"code": code, "message": message}])
    return JSONResponse(body, status_code=status, headers=headers)


def api_call(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """What every API call goes through: the request log, auth, scripted faults, the rate limit."""

    async def endpoint(request: Request) -> Response:
        standin: StandIn = request.app.state.standin
        body = await request.body() if request.method == "PUT" else None
        entry = standin.log_api_call(request.method, request.url.path, body)
        if not _authorized(request, standin.settings.token):
            response = api_error(403, 10000, "Authentication error")
        else:
            fault = standin.take_kv_fault(request.method, request.url.path)
            if fault and fault.hang:
                await asyncio.sleep(fault.hang)
            if fault and fault.close:
                return _drop_connection(request, standin, entry)
            if fault and fault.status:
                response = _fault_response(fault)
            else:
                response = _throttled(standin) or await handler(request, standin, body)
        standin.finish_api_call(entry, response.status_code)
        return response

    return endpoint


def _authorized(request: Request, token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and value.strip() == token


def _drop_connection(request: Request, standin: StandIn, entry: dict) -> Response:
    """Close the connection without an answer; without a real socket (in-process), answer 502."""
    close = request.scope.get(DROP_CONNECTION)
    if close is None:
        standin.finish_api_call(entry, 502, "close")
        return Response("connection dropped (scripted fault)", status_code=502)
    close()
    standin.finish_api_call(entry, None, "close")
    return Response(status_code=502)  # goes to a closed transport: nobody receives it


def _fault_response(fault: KvFault) -> Response:
    headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else None
    if fault.body is None:
        code, message = THROTTLED if fault.status == 429 else (10001, "scripted fault")
        response = api_error(fault.status, code, message)
        if headers:
            response.headers.update(headers)
        return response
    try:
        json.loads(fault.body)
        media_type = "application/json"
    except ValueError:
        media_type = "text/plain"
    return Response(fault.body, status_code=fault.status, headers=headers, media_type=media_type)


def _throttled(standin: StandIn) -> Response | None:
    settings = standin.settings
    wait = standin.api_limiter.admit("api", settings.api_rate_limit, settings.api_rate_window)
    return None if wait is None else api_error(429, *THROTTLED, retry_after=wait)


def _namespace(request: Request, standin: StandIn) -> Namespace | None:
    if request.path_params["account_id"] != standin.settings.account:
        return None
    return standin.namespaces.get(request.path_params["namespace_id"])


def _namespace_not_found() -> Response:
    return api_error(404, 10013, "namespace not found")


async def verify_token(request: Request, standin: StandIn, body: bytes | None) -> Response:
    return JSONResponse(envelope({"id": TOKEN_ID, "status": "active"}))


async def namespace_details(request: Request, standin: StandIn, body: bytes | None) -> Response:
    namespace = _namespace(request, standin)
    if namespace is None:
        return _namespace_not_found()
    result = {"id": namespace.id, "title": namespace.title, "supports_url_encoding": True}
    return JSONResponse(envelope(result))


async def value(request: Request, standin: StandIn, body: bytes | None) -> Response:
    namespace = _namespace(request, standin)
    if namespace is None:
        return _namespace_not_found()
    key = request.path_params["key"]
    if request.method == "PUT":
        return _write(namespace, key, body or b"")
    if request.method == "DELETE":
        namespace.write(key, None, "api")
        return JSONResponse(envelope({}))
    stored = namespace.current(key)
    if stored is None:
        return api_error(404, 10009, "get: 'key not found'")
    return Response(stored, media_type="application/octet-stream")


def _write(namespace: Namespace, key: str, raw: bytes) -> Response:
    now = time.monotonic()
    last = namespace.last_api_write.get(key)
    if last is not None and now - last < SAME_KEY_WRITE_INTERVAL:
        message = "too many requests: the same key was written more than once a second"
        return api_error(429, 10022, message, retry_after=1)
    namespace.write(key, raw, "api", at=now)
    namespace.last_api_write[key] = now
    return JSONResponse(envelope({}))


async def no_route(request: Request, standin: StandIn, body: bytes | None) -> Response:
    message = f"Could not route to {request.url.path}, perhaps your object identifier is invalid?"
    return api_error(404, 7003, message)


def kv_api_routes() -> list[Mount]:
    namespace = "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}"
    return [
        Mount(
            API_PREFIX,
            routes=[
                Route("/user/tokens/verify", api_call(verify_token), methods=["GET"]),
                Route(namespace, api_call(namespace_details), methods=["GET"]),
                Route(
                    namespace + "/values/{key:path}",
                    api_call(value),
                    methods=["GET", "PUT", "DELETE"],
                ),
                Route("/{rest:path}", api_call(no_route), methods=ALL_METHODS),
            ],
        )
    ]
