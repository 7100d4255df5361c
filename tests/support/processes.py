"""Stopping a server or worker the tests started in its own session."""

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the process group and wait; SIGKILL the group if it does not end in time.
    The group, not the process: gunicorn and Celery each leave children that would outlive it."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
