"""python -m edge_standin --namespace preview=<id> --namespace production=<id> [options]"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import Settings
from .traffic import logpush_loop

RESERVED_ENVS = {"client", "_standin"}  # first path segments the KV and control APIs own


def namespace_pair(text: str) -> tuple[str, str]:
    env, sep, namespace_id = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9][\w-]*", env) or not namespace_id:
        raise argparse.ArgumentTypeError(f"expected ENV=NAMESPACE_ID, got {text!r}")
    if env in RESERVED_ENVS:
        raise argparse.ArgumentTypeError(f"{env!r} cannot be an environment name")
    return env, namespace_id


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edge_standin",
        description="Local stand-in for the Cloudflare KV API and the canary edge worker.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--account", default="demo-account")
    parser.add_argument("--token", default="demo-token", help="API bearer token to accept")
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        metavar="ENV=NSID",
        type=namespace_pair,
        action="append",
        required=True,
        help="a KV namespace and the edge of environment ENV bound to it (repeatable)",
    )
    parser.add_argument("--propagation-delay", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--rate-limit", type=int, default=10, help="edge requests per window")
    parser.add_argument("--rate-window", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--exempt-token", help="X-Monitoring-Token value that skips the limit")
    parser.add_argument("--api-rate-limit", type=int, default=1200, help="API calls per window")
    parser.add_argument("--api-rate-window", type=float, default=300.0, metavar="SECONDS")
    parser.add_argument("--seed-config", action="store_true", help="write an initial config")
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        type=Path,
        help="keep KV values and traffic knobs in PATH across restarts (default: memory only)",
    )
    parser.add_argument(
        "--worker-script",
        dest="worker_scripts",
        metavar="NAME",
        action="append",
        default=[],
        help="a Worker script whose deployments the API lists, starting with one (repeatable)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--logpush-dir",
        metavar="DIR",
        help="write Logpush-shaped log files of each edge under DIR/<env>/ (see /_standin/traffic)",
    )
    parser.add_argument(
        "--logpush-interval", type=float, default=60.0, metavar="SECONDS", help="seconds per file"
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    namespaces = dict(args.namespaces)
    if len(namespaces) != len(args.namespaces) or len(set(namespaces.values())) != len(namespaces):
        raise SystemExit("each environment and each namespace id may appear only once")
    return Settings(
        namespaces=namespaces,
        account=args.account,
        token=args.token,
        propagation_delay=args.propagation_delay,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        exempt_token=args.exempt_token,
        api_rate_limit=args.api_rate_limit,
        api_rate_window=args.api_rate_window,
        seed_config=args.seed_config,
    )


def server_config(
    settings: Settings,
    host: str,
    port: int,
    log_level: str,
    state_file: Path | None = None,
    worker_scripts: list[str] = (),
) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings, state_file, worker_scripts),
        host=host,
        port=port,
        http="h11",  # the scripted "close" fault relies on h11's request cycle
        lifespan="off",
        proxy_headers=False,  # the worker reads X-Forwarded-For itself
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=1,
    )


async def serve(config: uvicorn.Config) -> None:
    server = uvicorn.Server(config)
    announcing = asyncio.create_task(announce_when_listening(server))
    # Writes files only while a Logpush directory is set (--logpush-dir or the knob).
    traffic = asyncio.create_task(logpush_loop(config.app.state.standin))
    try:
        await server.serve()  # a taken port ends here with uvicorn's message and SystemExit
    finally:
        announcing.cancel()
        traffic.cancel()


async def announce_when_listening(server: uvicorn.Server) -> None:
    """Print the address once uvicorn accepts connections (the real port when --port 0)."""
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"edge stand-in listening on http://{server.config.host}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = server_config(
        settings_from_args(args),
        args.host,
        args.port,
        args.log_level,
        args.state_file,
        args.worker_scripts,
    )
    logpush = config.app.state.standin.logpush
    logpush.directory = args.logpush_dir
    logpush.interval = max(1.0, args.logpush_interval)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
