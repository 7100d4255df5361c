"""The command line of a Celery worker process, as the tests and the benchmarks start one."""

import sys


def celery_worker_command(*, pool="threads", concurrency=4, loglevel="INFO", hostname=None):
    """``celery worker`` for this project, without gossip, mingle and heartbeats: a worker
    started for one test or one benchmark talks to no other worker."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
    ]
    if hostname:
        command.append(f"--hostname={hostname}")
    return [*command, "--without-gossip", "--without-mingle", "--without-heartbeat"]
