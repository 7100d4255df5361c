"""Test harness: the edge stand-in as a real HTTP server in a child process.

with EdgeStandIn(namespaces={"preview": "ns-preview"}) as edge:
    httpx.get(edge.qa_url("preview"))
    edge.knobs(propagation_delay=0.5)
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NAMESPACES = {"preview": "ns-preview-0001", "production": "ns-production-0001"}
LISTENING = re.compile(r"edge stand-in listening on (http://\S+)")
OUTPUT_KEPT = 200  # lines of the child's output kept for error messages


class EdgeStandIn:
    def __init__(
        self,
        namespaces: dict[str, str] | None = None,
        *,
        account: str = "demo-account",
        token: str = "demo-token",
        propagation_delay: float | None = None,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        exempt_token: str | None = None,
        api_rate_limit: int | None = None,
        seed_config: bool = False,
        state_file: Path | None = None,
        worker_scripts: tuple[str, ...] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        self.namespaces = dict(namespaces or DEFAULT_NAMESPACES)
        self.account = account
        self.token = token
        self.base_url = ""
        self._options = {
            "--propagation-delay": propagation_delay,
            "--rate-limit": rate_limit,
            "--rate-window": rate_window,
            "--exempt-token": exempt_token,
            "--api-rate-limit": api_rate_limit,
            "--state-file": state_file,
        }
        self._seed_config = seed_config
        self._worker_scripts = worker_scripts
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._output: deque[str] = deque(maxlen=OUTPUT_KEPT)
        self._client: httpx.Client | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "edge_standin",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--account",
            self.account,
            "--token",
            self.token,
        ]
        for env, namespace_id in self.namespaces.items():
            command += ["--namespace", f"{env}={namespace_id}"]
        for option, value in self._options.items():
            if value is not None:
                command += [option, str(value)]
        if self._seed_config:
            command.append("--seed-config")
        for script in self._worker_scripts:
            command += ["--worker-script", script]
        return command

    def start(self) -> EdgeStandIn:
        self._process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        announced: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_output, args=(announced,), daemon=True).start()
        try:
            self.base_url = announced.get(timeout=self._startup_timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                "the edge stand-in did not start:\n" + "".join(self._output)
            ) from None
        if not self.base_url:
            self.stop()
            raise RuntimeError("the edge stand-in exited:\n" + "".join(self._output))
        self._client = httpx.Client(base_url=self.base_url, timeout=10.0)
        return self

    def _read_output(self, announced: queue.Queue[str]) -> None:
        """Drain the child's output (so it never blocks on a full pipe) and report its URL."""
        assert self._process and self._process.stdout
        for line in self._process.stdout:
            self._output.append(line)
            match = LISTENING.search(line)
            if match:
                announced.put(match.group(1))
        announced.put("")  # the child exited; tells start() if it was still waiting

    def stop(self) -> None:
        if self._client:
            self._client.close()
            self._client = None
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)

    def __enter__(self) -> EdgeStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- addresses --------------------------------------------------------------------------

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/client/v4"

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def qa_url(self, env: str) -> str:
        return f"{self.base_url}/{env}/api/qa"

    def edge_url(self, env: str, path: str = "/") -> str:
        return f"{self.base_url}/{env}{path}"

    def namespace_id(self, ns: str) -> str:
        """Accepts an environment name or a namespace id."""
        return self.namespaces.get(ns, ns)

    def kv_url(self, ns: str, key: str = "config") -> str:
        namespace_id = self.namespace_id(ns)
        return (
            f"{self.api_base_url}/accounts/{self.account}/storage/kv/namespaces/"
            f"{namespace_id}/values/{key}"
        )

    # --- control API ------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("the edge stand-in is not running")
        return self._client

    def knobs(self, **knobs: object) -> dict:
        response = self.client.post("/_standin/knobs", json=knobs)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        response = self.client.get("/_standin/state")
        response.raise_for_status()
        return response.json()

    def visible_config(self, ns: str) -> str | None:
        """The raw config value the edge of this namespace currently sees."""
        return self.state()["namespaces"][self.namespace_id(ns)]["visible"]

    def kv_value(self, ns: str, key: str = "config") -> str | None:
        """The stored value read through the real KV API (None when the key is missing)."""
        response = self.client.get(self.kv_url(ns, key), headers=self.api_headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.text

    def put_external(self, ns: str, raw: str | bytes, key: str = "config") -> None:
        """An out-of-band write, like `wrangler kv key put` during an incident."""
        url = f"/_standin/kv/{self.namespace_id(ns)}"
        self.client.post(url, params={"key": key}, content=raw).raise_for_status()

    def delete_external(self, ns: str, key: str = "config") -> None:
        url = f"/_standin/kv/{self.namespace_id(ns)}"
        self.client.delete(url, params={"key": key}).raise_for_status()

    def requests(self, method: str | None = None, since: int = 0) -> list[dict]:
        """The KV API calls the stand-in served, optionally only one method's."""
        response = self.client.get("/_standin/requests", params={"since": since})
        response.raise_for_status()
        entries = response.json()["requests"]
        return [e for e in entries if method is None or e["method"] == method.upper()]

    def edge_requests(self, env: str | None = None, since: int = 0) -> list[dict]:
        """Requests the edge workers received (method, path, headers, status), optionally
        only one environment's; header names are lower case."""
        response = self.client.get("/_standin/edge-requests", params={"since": since})
        response.raise_for_status()
        entries = response.json()["requests"]
        return [e for e in entries if env is None or e["env"] == env]

    def reset(self, values: bool = False) -> None:
        self.client.post("/_standin/reset", json={"values": values}).raise_for_status()

    def deploy(self, script: str, **deployment: object) -> dict:
        """A new deployment of a Worker script, as `wrangler deploy` makes one: a new version
        (or ``version_id=``), at ``percentage=`` below 100 for a split with the live version;
        the script is created by its first deployment."""
        response = self.client.post(f"/_standin/workers/{script}", json=deployment)
        response.raise_for_status()
        return response.json()

    def remove_script(self, script: str) -> None:
        self.client.delete(f"/_standin/workers/{script}").raise_for_status()
