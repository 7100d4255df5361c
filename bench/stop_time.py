#!/usr/bin/env python
"""From the first bad log line to the emergency stop, on the stack as the demo runs it.

    .venv/bin/python bench/stop_time.py [--runs 5] [--modes runbook,evidence]
        [--rpm 30000] [--warmup 150] [--web-port 8120] [--edge-port 8121] [--venv PATH]
        [--out stop_time.jsonl]

Each run starts ``scripts/demo`` of this checkout afresh (its var/ is removed first: run it in a
checkout of its own): the edge stand-in writing 60-second Logpush files, one Celery worker with
beat, every interval at its default. It turns the automatic emergency stop on for the service
(and, in mode ``evidence``, overwhelming evidence), raises the stand-in's traffic, lets the rules
see a few healthy minutes, and then, at a random moment of the file cycle, makes the native
cohort fail (5xx from 0.2 % to ``--fault-rate``). It prints, from that moment: the critical
alert firing, the stop's KV PUT, and the edge reporting the stop (``reason=emergency``: the
worker's confirmation, which polls the edge's ``/api/qa``), and what the rule fired on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
for name in ("DATABASE_URL", "CELERY_BROKER_URL", "ROLLOUT_VAR_DIR"):
    os.environ.pop(name, None)

import httpx  # noqa: E402

READY = "Rollout Control is running"
RULE = "native-5xx-critical"
FILE_SECONDS = 60  # the stand-in's default Logpush interval, as the demo runs it


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_demo(args) -> subprocess.Popen:
    shutil.rmtree(ROOT / "var", ignore_errors=True)
    (ROOT / "var").mkdir()
    env = {
        **os.environ,
        "WEB_PORT": str(args.web_port),
        "EDGE_PORT": str(args.edge_port),
        "DEMO_VENV": args.venv,
    }
    log = open(ROOT / "var" / "demo.out", "w")  # noqa: SIM115 - lives as long as the demo
    demo = subprocess.Popen(
        ["scripts/demo"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while READY not in (ROOT / "var" / "demo.out").read_text():
        if demo.poll() is not None or time.time() > deadline:
            raise SystemExit("the demo did not start:\n" + (ROOT / "var/demo.out").read_text())
        time.sleep(0.5)
    return demo


def stop_demo(demo: subprocess.Popen) -> None:
    from django.db import connections

    connections.close_all()
    try:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()


def newest_file_at(directory: Path) -> float | None:
    files = [path.stat().st_mtime for path in directory.rglob("*.log.gz")]
    return max(files, default=None)


def one_run(args, mode: str, number: int) -> dict:
    demo = start_demo(args)
    try:
        return measure(args, mode, number)
    finally:
        stop_demo(demo)


def measure(args, mode: str, number: int) -> dict:
    import django

    django.setup()
    from metrics import alerts
    from metrics.models import AlertEvent, AlertState
    from rollout.models import ConfigChange, Environment

    production = Environment.objects.get(service__name="pix-immo-api", name="production")
    policy = alerts.policy_for(production.service)
    policy.auto_emergency_stop = True
    policy.overwhelming_evidence = mode == "evidence"
    policy.save()
    edge = httpx.Client(base_url=f"http://127.0.0.1:{args.edge_port}", timeout=10)
    edge.post(
        "/_standin/traffic",
        json={
            "production": {
                "requests_per_minute": args.rpm,
                "native": {"error_rate": 0.002, "rate_factor": args.native_factor},
                "proxy": {"error_rate": 0.002},
            }
        },
    ).raise_for_status()
    # Healthy minutes at this traffic first: they set what a minute's volume can be.
    time.sleep(args.warmup)
    state = AlertState.objects.filter(environment=production, rule__name=RULE).first()
    assert state is None or state.state not in ("pending", "firing"), state
    load_before = loadavg()
    time.sleep(random.uniform(0, FILE_SECONDS))  # a random moment of the file cycle
    newest = newest_file_at(ROOT / "var" / "logpush" / "production")
    fault = time.time()
    edge.post(
        "/_standin/traffic", json={"production": {"native": {"error_rate": args.fault_rate}}}
    ).raise_for_status()
    deadline = fault + args.timeout
    stop = None
    while time.time() < deadline:
        stop = (
            ConfigChange.objects.filter(
                environment=production,
                kind=ConfigChange.Kind.EMERGENCY_STOP,
                in_effect_at__isnull=False,
            )
            .order_by("pk")
            .first()
        )
        if stop:
            break
        time.sleep(0.5)
    firing = (
        AlertEvent.objects.filter(
            environment=production, alert__rule__name=RULE, new_state="firing"
        )
        .order_by("pk")
        .first()
    )
    figures = firing.figures if firing else {}
    state = AlertState.objects.filter(environment=production, rule__name=RULE).first()
    if figures.get("overwhelming_evidence"):
        fired_on = "overwhelming evidence"
    elif figures.get("settled") is False:
        fired_on = "certain breach, minute still arriving"
    elif firing:
        fired_on = "settled minute"
    else:
        fired_on = "did not fire"

    def since_fault(moment):
        return None if moment is None else round(moment.timestamp() - fault, 1)

    return {
        "mode": mode,
        "run": number,
        "fault_at": datetime.fromtimestamp(fault, UTC).isoformat(),
        "fault_after_last_file_s": None if newest is None else round(fault - newest, 1),
        # The "for" duration counts from here: the start of the first breaching minute.
        "breaching_since": state.since.isoformat() if state and state.since else None,
        "firing_s": since_fault(firing.created_at if firing else None),
        "kv_put_s": since_fault(stop.written_at if stop else None),
        "edge_s": since_fault(stop.in_effect_at if stop else None),
        "fired_on": fired_on,
        "firing_minute": figures.get("minute"),
        "native_5xx_percent": figures.get("native_5xx_percent"),
        "evidence_from": figures.get("evidence_from"),
        "evidence_lower_bound_percent": figures.get("evidence_lower_bound_percent"),
        "evidence_requests": figures.get("evidence_requests"),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="runbook,evidence")
    parser.add_argument("--web-port", type=int, default=8120)
    parser.add_argument("--edge-port", type=int, default=8121)
    parser.add_argument("--venv", default=str(Path(sys.executable).parent.parent))
    parser.add_argument("--rpm", type=float, default=30_000, help="the edge's requests a minute")
    parser.add_argument(
        "--native-factor", type=float, default=5, help="the native cohort's rate_factor knob"
    )
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--warmup", type=float, default=150, help="healthy seconds first")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", default="stop_time.jsonl")
    args = parser.parse_args()
    print(
        f"{'mode':9} {'run':>3} {'fault after file':>16} {'firing':>7} {'KV PUT':>7} "
        f"{'edge':>7}  fired on"
    )
    with open(args.out, "a") as out:
        for mode in args.modes.split(","):
            for number in range(1, args.runs + 1):
                result = one_run(args, mode, number)
                out.write(json.dumps(result) + "\n")
                out.flush()
                print(
                    f"{mode:9} {number:>3} {result['fault_after_last_file_s']!s:>15}s "
                    f"{result['firing_s']!s:>6}s {result['kv_put_s']!s:>6}s "
                    f"{result['edge_s']!s:>6}s  {result['fired_on']} "
                    f"(load {result['loadavg_before']})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
