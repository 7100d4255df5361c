#!/usr/bin/env python
"""The emergency stop from the command line: from starting `rollout-control stop … --yes` to the
PUT of the stopped config arriving at the KV API, next to the runbook's
`npx wrangler kv key put` and a bare `curl -X PUT` against the same edge stand-in, interleaved
in one run.

    .venv/bin/python bench/stop_from_cli.py [--trials 30] [--wrangler 4.86.0]

Starts the edge stand-in, gunicorn (config.wsgi, the project's gunicorn.conf.py), one Celery
worker on Redis database 12 and PostgreSQL database ``rollout_bench_cli`` (dropped and
re-created). The CLI path is the whole product path: a new Python process, the token API,
the service function (permission, audit, the new desired version), the commit, the priority
queue, the worker's read-merge-write of KV. wrangler's and curl's only write KV (no record, no
merge, no permission). Each trial of each kind is timed from just before its process starts
to the stand-in's arrival time of its PUT (both on this machine's clock). Between trials the
stop is lifted through the service and the next write waits 1.1 s after the previous PUT,
because Workers KV answers 429 to a second write of one key within a second.

wrangler runs through ``npx --yes wrangler@VERSION`` (fetched into npm's cache on first use,
then warmed up once before timing); 4.86.0 is the newest wrangler that runs on Node 20.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (  # bench/common.py
    answers,
    bench_settings,
    configured_environment,
    percentile,
    recreate_database,
    started,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollout_bench_cli"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
PORT = int(os.environ.get("BENCH_WEB_PORT", "8140"))
SERVICE = "pix-immo-api"
NAMESPACE = "ns-bench-stop"
STOPPED = '{"canary_percent":0,"canary_tag":"B2a","emergency_proxy":true}'
bench_settings(DATABASE_URL, BROKER_URL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--wrangler", default="4.86.0", help="wrangler version for npx")
    args = parser.parse_args()

    load_before = Path("/proc/loadavg").read_text().strip()
    recreate_database(DATABASE_URL)
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()

    from tests.support.edge import EdgeStandIn
    from tests.support.processes import stop_group
    from tests.support.worker import celery_worker_command

    with (
        EdgeStandIn(
            namespaces={"production": NAMESPACE}, token="bench-token", propagation_delay=0
        ) as edge,
        tempfile.TemporaryDirectory() as var,
    ):
        os.environ.update(
            CLOUDFLARE_API_BASE_URL=edge.api_base_url,
            CLOUDFLARE_API_TOKEN="bench-token",
            ROLLOUT_VAR_DIR=var,
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        environment, person, token = set_up(edge)
        logs = open(Path(var) / "processes.log", "w")  # noqa: SIM115 - closed with the dir
        children = [
            started(command, logs)
            for command in (
                celery_worker_command(loglevel="WARNING"),
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{PORT}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                ],
            )
        ]
        try:
            try:
                wait(lambda: answers(f"http://127.0.0.1:{PORT}/api/v1/schema"), 60, "gunicorn")
            except SystemExit:
                print((Path(var) / "processes.log").read_text()[-12000:], file=sys.stderr)
                raise
            timings = run_trials(edge, environment, person, token, args)
        finally:
            for child in children:
                stop_group(child)
    load_after = Path("/proc/loadavg").read_text().strip()
    report(timings, args, load_before, load_after)


def set_up(edge):
    """Production connected with its initial config (written by the worker once it starts), a
    DevOps engineer and their API token."""
    from django.contrib.auth.models import Group, User

    from api import tokens
    from rollout.models import Service

    environment = configured_environment(
        Service.objects.create(name=SERVICE),
        "production",
        account=edge.account,
        namespace=NAMESPACE,
        qa_url=edge.qa_url("production"),
    )
    person = User.objects.create_user("olga", password="bench-only")
    person.groups.add(Group.objects.get(name="devops"))
    return environment, person, tokens.issue_personal(person=person, name="bench", days=1).secret


def run_trials(edge, environment, person, token, args):
    from tests.support.cli import console_script

    npx = shutil.which("npx")
    wrangler = [npx, "--yes", f"wrangler@{args.wrangler}"] if npx else None
    wrangler_env = dict(
        os.environ,
        CLOUDFLARE_API_BASE_URL=edge.api_base_url,
        CLOUDFLARE_API_TOKEN="bench-token",
        CLOUDFLARE_ACCOUNT_ID=edge.account,
        WRANGLER_SEND_METRICS="false",
    )
    put = [*(wrangler or []), "kv", "key", "put", "--namespace-id", NAMESPACE, "config", STOPPED]
    put.append("--remote")
    if wrangler:
        subprocess.run(put, env=wrangler_env, capture_output=True, timeout=600, check=True)
        lift(edge, environment, person)

    cli_env = dict(
        os.environ,
        ROLLOUT_CONTROL_URL=f"http://127.0.0.1:{PORT}",
        ROLLOUT_CONTROL_TOKEN=token,
        XDG_CONFIG_HOME=tempfile.mkdtemp(),
    )
    cli = [*console_script(), "stop", f"{SERVICE}/production", "--reason", "bench", "--yes"]
    curl = [
        "curl", "-sf", "-X", "PUT", "-H", "Authorization: Bearer bench-token",
        "--data-binary", STOPPED, edge.kv_url(NAMESPACE),
    ]  # fmt: skip
    kinds = {"rollout-control stop": (cli, cli_env), "curl -X PUT": (curl, None)}
    if wrangler:
        kinds["npx wrangler kv key put"] = (put, wrangler_env)
    timings = {kind: {"put": [], "exit": []} for kind in kinds}
    for trial in range(args.trials):
        for kind, (command, env) in kinds.items():
            seen = len(edge.requests())
            started = time.time()
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            exited = time.time()
            if done.returncode:
                raise SystemExit(f"{kind} failed ({done.returncode}):\n{done.stderr}")
            entry = wait(lambda seen=seen: stopped_put(edge, seen), 30, f"{kind}'s PUT")
            timings[kind]["put"].append((entry["time"] - started) * 1000)
            timings[kind]["exit"].append((exited - started) * 1000)
            lift(edge, environment, person)
        print(f"trial {trial + 1}/{args.trials}", file=sys.stderr)
    return timings


def stopped_put(edge, since):
    for entry in edge.requests("PUT", since=since):
        if entry["status"] == 200 and json.loads(entry["body"]).get("emergency_proxy"):
            return entry
    return None


def lift(edge, environment, person):
    """Back to no stop through the service (written by the worker), then KV's second."""
    from integrations.kv_value import CanarySettings
    from rollout.models import DesiredConfig
    from rollout.services import controls

    seen = len(edge.requests())
    desired = DesiredConfig.objects.get(environment=environment)
    if desired.emergency_proxy:
        controls.lift_emergency(
            environment=environment,
            reason="bench",
            expected_version=desired.version,
            actor=person,
        )
    else:  # only wrangler or curl wrote the stop: the desired state is written again
        controls.request_change(
            environment=environment,
            settings=CanarySettings(desired.canary_percent, desired.canary_tag, False),
            kind="percent_change",
            reason="bench",
            expected_version=None,
            system="bench",
        )
    entry = wait(lambda: unstopped_put(edge, seen), 30, "the lift's PUT")
    time.sleep(max(0.0, entry["finished"] + 1.1 - time.time()))


def unstopped_put(edge, since):
    for entry in edge.requests("PUT", since=since):
        if entry["status"] == 200 and not json.loads(entry["body"]).get("emergency_proxy"):
            return entry
    return None


def wait(predicate, timeout, what):
    return wait_for(predicate, timeout, what, every=0.005)


def report(timings, args, load_before, load_after):
    print(f"trials: {args.trials} of each, interleaved; wrangler {args.wrangler}")
    print(f"/proc/loadavg before: {load_before}")
    print(f"/proc/loadavg after:  {load_after}")
    print(f"{'':28s} {'command start -> KV PUT':>33s}   {'command start -> exit':>25s}")
    for kind, values in timings.items():
        put, exit_ = values["put"], values["exit"]
        print(
            f"{kind:28s} p50 {statistics.median(put):7.1f} ms  p99 {percentile(put, 0.99):7.1f} ms"
            f"   p50 {statistics.median(exit_):7.1f} ms  p99 {percentile(exit_, 0.99):7.1f} ms"
        )


if __name__ == "__main__":
    main()
