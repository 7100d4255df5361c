"""The stand-in's Logpush traffic: knobs per environment and cohort, files written on demand
(``POST /_standin/logpush/write``) and, with a directory set, every ``interval`` seconds by a
background loop — so the demo's panels move and can be made to fail.

The cohort split follows what each edge currently sees in KV (the emergency flag sends every
request to proxy), scaled by each cohort's ``rate_factor``.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .logpush import LogpushState, Routing, TrafficError, make_batch, write_batch
from .worker import parse_config

MAX_WRITE_MINUTES = 24 * 60


def routing_of(standin, env: str) -> Routing:
    config = parse_config(standin.edge_config(env))
    return Routing(config.percent, config.tag, config.emergency_proxy)


def write_range(
    standin,
    env: str,
    start: float,
    end: float,
    *,
    file_minutes: float,
    directory: str | None = None,
    earlier: list = (),
) -> list[dict]:
    """Files covering [start, end), ``file_minutes`` each, with the edge's current routing;
    ``earlier``: knobs that held before a moment (``LogpushState.knobs_since``), else the
    current knobs hold for the whole range."""
    state: LogpushState = standin.logpush
    target = state.env_directory(env, directory)
    if target is None:
        raise TrafficError("no directory: start with --logpush-dir or set the knob")
    routing = routing_of(standin, env)
    written = []
    moment = start
    while moment < end:
        until = min(moment + file_minutes * 60, end)
        batch = make_batch(
            state.rng, moment, until, routing, state.traffic[env], state.prefix, earlier
        )
        write_batch(target, batch)
        state.files_written += 2
        written.append(batch.summary())
        moment = until
    return written


async def traffic_knobs(request: Request) -> Response:
    standin = request.app.state.standin
    if request.method == "POST":
        try:
            standin.logpush.apply(await request.json())
        except (TrafficError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        standin.save()
    return JSONResponse(standin.logpush.view())


async def write_files(request: Request) -> Response:
    """``{"env", "minutes", "end"?, "file_minutes"?, "directory"?}``: write the files of the
    ``minutes`` before ``end`` (seconds since the epoch, default now) at the current knobs."""
    standin = request.app.state.standin
    try:
        body = await request.json()
        env = body["env"]
        minutes = float(body.get("minutes", 5))
        end = float(body.get("end") or time.time())
        file_minutes = float(body.get("file_minutes", 1))
        if env not in standin.envs:
            raise TrafficError(f"unknown environment {env!r}")
        if not 0 < minutes <= MAX_WRITE_MINUTES or file_minutes <= 0:
            raise TrafficError("minutes must be in (0, 1440] and file_minutes above 0")
        files = write_range(
            standin,
            env,
            end - minutes * 60,
            end,
            file_minutes=file_minutes,
            directory=body.get("directory"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
    totals = {"native": {"requests": 0, "errors_5xx": 0}, "proxy": {"requests": 0, "errors_5xx": 0}}
    for batch in files:
        for cohort, counts in batch["requests"].items():
            for name, count in counts.items():
                totals[cohort][name] += count
    upload_errors = sum(batch["upload_errors"] for batch in files)
    return JSONResponse({"files": files, "requests": totals, "upload_errors": upload_errors})


def traffic_routes() -> list[Route]:
    return [
        Route("/_standin/traffic", traffic_knobs, methods=["GET", "POST"]),
        Route("/_standin/logpush/write", write_files, methods=["POST"]),
    ]


async def logpush_loop(standin) -> None:
    """Every ``interval`` seconds, the files of the time since the last ones, per environment."""
    state: LogpushState = standin.logpush
    while True:
        await asyncio.sleep(min(state.interval, 5.0))
        if state.directory is None:
            continue
        now = time.time()
        for env in standin.envs:
            since = state.written_until.get(env, now - state.interval)
            if now - since < state.interval:
                continue
            # after a restart, the gap in files of five minutes rather than one per interval
            file_minutes = state.interval / 60 if now - since < 10 * state.interval else 5
            try:
                write_range(
                    standin,
                    env,
                    since,
                    now,
                    file_minutes=file_minutes,
                    earlier=state.knobs_since(env, since),
                )
            except (OSError, TrafficError) as exc:
                print(f"logpush: could not write files for {env}: {exc}", flush=True)
                continue
            state.written_until[env] = now
            standin.save()
