#!/usr/bin/env python
"""Hammer the embedded brokers with concurrent producers and consumers, old and new side by side.

    .venv/bin/python bench/broker_hammer.py [--minutes 3] [--producers 4] [--workers 2] [--rate 20]

For each broker (kombu's ``filesystem://`` transport, which the embedded demo used until it died
with "Unrecoverable error: JSONDecodeError", and ``sqla+sqlite://``, which it uses now) the script
starts ``--workers`` Celery worker processes (threads pool, 4 threads, like the demo's worker)
and ``--producers`` producer processes sending ``--rate`` tasks a second each, all at the same
time, for ``--minutes``. Each task appends its id to a file; at the end the script waits for the
queues to drain (at most ``--drain`` seconds) and counts, per broker: messages sent, publishes
that failed, messages not run (lost, or still queued when the drain time ran out), messages run
more than once, and worker deaths (a dead worker is restarted so the run goes on, and the last
line of its log is shown). Everything lives in a fresh temporary folder.
"""

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
NOT_RUN = "not run (lost or still queued)"


def broker_settings(kind: str, folder: Path) -> tuple[str, dict]:
    if kind == "filesystem":
        queue = folder / "queue"
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return f"sqla+sqlite:///{folder / 'broker.sqlite3'}", {"connect_args": {"timeout": 30}}


def make_app(kind: str, folder: Path) -> Celery:
    url, options = broker_settings(kind, folder)
    app = Celery("hammer", broker=url)
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
    )
    return app


# The worker imports this module (-A broker_hammer:app) with HAMMER_KIND and HAMMER_DIR set.
if os.environ.get("HAMMER_KIND"):
    app = make_app(os.environ["HAMMER_KIND"], Path(os.environ["HAMMER_DIR"]))

    @app.task(name="hammer.record")
    def record(message_id: str, padding: str) -> None:
        fd = os.open(os.environ["HAMMER_DIR"] + "/received.log", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, f"{message_id}\n".encode())
        finally:
            os.close(fd)


def produce(kind: str, folder: str, producer: int, rate: float, until: float, size: int) -> None:
    app = make_app(kind, Path(folder))
    padding = "x" * size
    sent, failed = 0, 0
    with open(Path(folder) / f"sent-{producer}.log", "w") as log:
        while time.time() < until:
            message_id = f"{producer}-{sent + failed}"
            try:
                app.send_task("hammer.record", args=[message_id, padding])
                log.write(message_id + "\n")
                sent += 1
            except Exception as error:  # counted, never fatal: the run measures failures
                failed += 1
                print(f"[{kind}] publish failed: {error!r}", file=sys.stderr)
            time.sleep(1 / rate)
    (Path(folder) / f"failed-{producer}.count").write_text(str(failed))


class Broker:
    def __init__(self, kind: str, base: Path, workers: int) -> None:
        self.kind = kind
        self.folder = base / kind
        self.folder.mkdir()
        (self.folder / "received.log").touch()
        self.env = {**os.environ, "HAMMER_KIND": kind, "HAMMER_DIR": str(self.folder)}
        self.workers: list[subprocess.Popen | None] = [None] * workers
        self.starts = [0] * workers
        self.deaths: list[str] = []

    def start_worker(self, index: int) -> None:
        self.starts[index] += 1
        log = open(self.folder / f"worker-{index}-{self.starts[index]}.log", "w")
        self.workers[index] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "broker_hammer:app", "worker", "--pool=threads",
             "--concurrency=4", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{self.kind}{index}@%h"],
            cwd=Path(__file__).parent, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def watch(self) -> None:
        """Restart a worker that died, remembering the last line it logged."""
        for index, worker in enumerate(self.workers):
            if worker is not None and worker.poll() is not None:
                log = self.folder / f"worker-{index}-{self.starts[index]}.log"
                lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
                unrecoverable = [line for line in lines if "Unrecoverable" in line]
                self.deaths.append((unrecoverable or lines)[-1][:160])
                self.start_worker(index)

    def received(self) -> list[str]:
        return (self.folder / "received.log").read_text().split()

    def stop(self) -> None:
        for worker in self.workers:
            if worker is not None:
                worker.terminate()
        for worker in self.workers:
            if worker is not None:
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()

    def report(self) -> dict:
        sent = []
        failed = 0
        for path in self.folder.glob("sent-*.log"):
            sent += path.read_text().split()
        for path in self.folder.glob("failed-*.count"):
            failed += int(path.read_text() or 0)
        received = Counter(self.received())
        return {
            "broker": self.kind,
            "sent": len(sent),
            "publish failed": failed,
            NOT_RUN: len(set(sent) - set(received)),
            "run twice or more": sum(1 for n in received.values() if n > 1),
            "worker deaths": len(self.deaths),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--producers", type=int, default=4, help="producer processes per broker")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per broker")
    parser.add_argument("--rate", type=float, default=20.0, help="tasks a second per producer")
    parser.add_argument("--size", type=int, default=2048, help="bytes of padding per message")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait at the end")
    parser.add_argument("--brokers", default="filesystem,sqla")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="broker-hammer-"))
    brokers = [Broker(kind, base, args.workers) for kind in args.brokers.split(",")]
    for broker in brokers:
        for index in range(args.workers):
            broker.start_worker(index)
    until = time.time() + args.minutes * 60
    producers = [
        multiprocessing.Process(
            target=produce, args=(broker.kind, str(broker.folder), n, args.rate, until, args.size)
        )
        for broker in brokers
        for n in range(args.producers)
    ]
    for process in producers:
        process.start()
    while any(process.is_alive() for process in producers):
        for broker in brokers:
            broker.watch()
        time.sleep(0.5)

    # Drain: wait until every broker ran what it was sent, or stopped making progress.
    deadline = time.time() + args.drain
    last = None
    while time.time() < deadline:
        for broker in brokers:
            broker.watch()
        counts = [len(broker.received()) for broker in brokers]
        if all(b.report()[NOT_RUN] == 0 for b in brokers) or counts == last:
            break
        last = counts
        time.sleep(5)
    for broker in brokers:
        broker.stop()

    print(f"\n{args.minutes:g} min, {args.producers} producers x {args.rate:g}/s "
          f"({args.size} B padding) and "
          f"{args.workers} workers per broker; files in {base}")
    reports = [broker.report() for broker in brokers]
    columns = list(reports[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for report in reports:
        print("| " + " | ".join(str(report[c]) for c in columns) + " |")
    for broker in brokers:
        for death in broker.deaths:
            print(f"[{broker.kind}] worker died: {death}")


if __name__ == "__main__":
    main()
