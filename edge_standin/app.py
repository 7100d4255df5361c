"""The Starlette application: KV API, control API and one edge worker per environment."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .control import control_routes
from .deployments import WorkerScripts, deployments_routes, workers_state_file
from .kv_api import API_PREFIX, DROP_CONNECTION, kv_api_routes
from .settings import Settings
from .state import StandIn
from .traffic import traffic_routes
from .worker import edge_routes


class StandInApp(Starlette):
    """Starlette that lets an endpoint drop its client connection without answering.

    Only the server's own `send` knows the connection: under uvicorn's h11 protocol it is a
    method of the request cycle, which holds the transport. Middleware wraps `send` before
    endpoints see it, so the close callable is put into the scope here, at the outermost layer.
    Elsewhere (an in-process test transport) there is none and the endpoint answers 502 instead.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            scope[DROP_CONNECTION] = transport.close
        await super().__call__(scope, receive, send)


async def index(request: Request) -> Response:
    standin: StandIn = request.app.state.standin
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "service": "edge stand-in",
            "api_base_url": base + API_PREFIX,
            "edges": {env: f"{base}/{env}/api/qa" for env in standin.envs},
            "control": f"{base}/_standin/state",
        }
    )


def create_app(
    settings: Settings, state_file: Path | None = None, worker_scripts: list[str] = ()
) -> Starlette:
    app = StandInApp(
        routes=[
            Route("/", index, methods=["GET"]),
            *deployments_routes(),  # before the KV API's catch-all under the same prefix
            *kv_api_routes(),
            *control_routes(),
            *traffic_routes(),
            *edge_routes(),
        ]
    )
    app.state.standin = StandIn(settings, state_file)
    app.state.workers = WorkerScripts(worker_scripts, workers_state_file(state_file))
    return app
