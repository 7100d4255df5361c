"""Workers deployments: which version of each Worker script serves traffic.

The Cloudflare API's ``GET /accounts/{account}/workers/scripts/{script}/deployments`` (v4
envelope, ``result.deployments`` newest first, the first one serving traffic), through the same
request log, auth, scripted faults and rate limit as the KV API; and a control under
``/_standin/workers`` that "deploys" a new version (or a two-version split, as a gradual
deployment does), lists the scripts, or removes one (so that the API answers 404 for it).

Scripts given at start (``--worker-script``) begin with one deployment of the same version, as
if one build had been deployed to every environment. With a state file, the scripts are kept in
``<state file>-workers.json`` across restarts, so a restarted demo shows no deployment that did
not happen.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .kv_api import API_PREFIX, api_call, api_error, envelope
from .state import KnobError, StandIn

# The version every script starts with: one build deployed everywhere.
INITIAL_VERSION = str(uuid.uuid5(uuid.NAMESPACE_URL, "edge-standin/initial-build"))
SCRIPT_NOT_FOUND = (10007, "This Worker does not exist on your account.")
KEPT = 10  # deployments listed per script, as the API lists the latest ones


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deployment(versions: list[dict], *, message: str = "", author_email: str = "", **extra):
    return {
        "id": str(uuid.uuid4()),
        "created_on": extra.get("created_on") or _now_text(),
        "source": extra.get("source") or "wrangler",
        "strategy": "percentage",
        "author_email": author_email or "deploy@example.com",
        "annotations": {
            "workers/message": message,
            "workers/triggered_by": extra.get("triggered_by") or "deployment",
        },
        "versions": versions,
    }


class WorkerScripts:
    """The deployments of each script, newest first."""

    def __init__(self, names: list[str] = (), state_file: Path | None = None) -> None:
        self.state_file = state_file
        self.scripts: dict[str, list[dict]] = {}
        self.initial = list(names)
        self.load()
        for name in self.initial:
            self.scripts.setdefault(name, [self._first()])
        self.save()

    @staticmethod
    def _first() -> dict:
        versions = [{"version_id": INITIAL_VERSION, "percentage": 100}]
        return deployment(versions, message="initial build", triggered_by="upload")

    def deploy(self, script: str, body: object) -> dict:
        """A new deployment from the control's body: ``version_id`` (new if absent) at
        ``percentage`` (default 100; below 100 the live version keeps the rest), or ``versions``
        given whole; ``message``, ``author_email``, ``created_on``, ``triggered_by``."""
        if not isinstance(body, dict):
            raise KnobError("a deployment is a JSON object")
        unknown = set(body) - {
            "version_id",
            "percentage",
            "versions",
            "message",
            "author_email",
            "created_on",
            "triggered_by",
            "source",
        }
        if unknown:
            raise KnobError(f"unknown deployment fields: {sorted(unknown)}")
        versions = body.get("versions")
        if versions is None:
            versions = self._split(script, body)
        if not isinstance(versions, list) or not 1 <= len(versions) <= 2:
            raise KnobError("versions is a list of one or two {version_id, percentage}")
        created = deployment(
            versions,
            message=str(body.get("message") or ""),
            author_email=str(body.get("author_email") or ""),
            created_on=body.get("created_on"),
            triggered_by=body.get("triggered_by"),
            source=body.get("source"),
        )
        self.scripts[script] = [created, *self.scripts.get(script, [])][:KEPT]
        self.save()
        return created

    def _split(self, script: str, body: dict) -> list[dict]:
        version_id = str(body.get("version_id") or uuid.uuid4())
        percentage = body.get("percentage", 100)
        if isinstance(percentage, bool) or not isinstance(percentage, int | float):
            raise KnobError("percentage must be a number")
        if not 0 < percentage <= 100:
            raise KnobError("percentage is above 0 and at most 100")
        if percentage == 100:
            return [{"version_id": version_id, "percentage": 100}]
        live = self.scripts.get(script)
        if not live:
            raise KnobError(f"{script} has no live version to split with")
        keeps = max(live[0]["versions"], key=lambda version: version["percentage"])
        return [
            {"version_id": keeps["version_id"], "percentage": 100 - percentage},
            {"version_id": version_id, "percentage": percentage},
        ]

    def remove(self, script: str) -> bool:
        found = self.scripts.pop(script, None) is not None
        self.save()
        return found

    def reset(self) -> None:
        """Every script back to its start: the ones given at start with their first build."""
        self.scripts = {name: [self._first()] for name in self.initial}
        self.save()

    def load(self) -> None:
        if self.state_file is None:
            return
        try:
            saved = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        if isinstance(saved, dict):
            self.scripts = {str(k): v for k, v in saved.items() if isinstance(v, list)}

    def save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".tmp")
        partial.write_text(json.dumps(self.scripts, indent=1))
        os.replace(partial, self.state_file)


def workers_state_file(state_file: Path | None) -> Path | None:
    return None if state_file is None else state_file.with_name(state_file.stem + "-workers.json")


def _scripts(request: Request) -> WorkerScripts:
    return request.app.state.workers


async def list_deployments(request: Request, standin: StandIn, body: bytes | None) -> Response:
    if request.path_params["account_id"] != standin.settings.account:
        return api_error(404, 7003, "Could not route to this account")
    deployments = _scripts(request).scripts.get(request.path_params["script_name"])
    if deployments is None:
        return api_error(404, *SCRIPT_NOT_FOUND)
    return JSONResponse(envelope({"deployments": deployments}))


async def control(request: Request) -> Response:
    scripts = _scripts(request)
    script = request.path_params["script_name"]
    if request.method == "DELETE":
        return JSONResponse({"script": script, "removed": scripts.remove(script)})
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
        created = scripts.deploy(script, body)
    except ValueError as exc:  # KnobError, or a body that is not JSON
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(created, status_code=201)


async def overview(request: Request) -> Response:
    return JSONResponse(_scripts(request).scripts)


def deployments_routes() -> list[Route]:
    path = "/accounts/{account_id}/workers/scripts/{script_name}/deployments"
    return [
        Route(API_PREFIX + path, api_call(list_deployments), methods=["GET"]),
        Route("/_standin/workers", overview, methods=["GET"]),
        Route("/_standin/workers/{script_name}", control, methods=["POST", "DELETE"]),
    ]
