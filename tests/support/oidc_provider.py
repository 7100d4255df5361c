"""The company's identity provider for the tests: node-oidc-provider (tests/oidc_provider/
provider.js) as a child process on 127.0.0.1, with the people of tests/oidc_provider/users.json.

    with OidcProvider(redirect_uri=…, post_logout_redirect_uri=…) as provider:
        provider.set_groups("dora", ["engineering"])
        provider.misbehave(id_token="expired")

``scripts/test`` installs it (``npm ci`` in tests/oidc_provider/)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.processes import stop_group

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
CLIENT_ID = "rollout-control"
CLIENT_SECRET = "rollout-control-test-secret"
# The people of users.json and the groups that give them a role (config: OIDC_ROLE_GROUPS).
ROLE_GROUPS = {
    "viewer": ["engineering"],
    "release manager": ["rollout-release-managers"],
    "tech lead": ["rollout-tech-leads"],
    "devops": ["rollout-devops"],
    "admin": ["rollout-admins"],
}
PASSWORDS = {"tessa": "tessa-pass-2026", "dora": "dora-pass-2026", "nora": "nora-pass-2026"}


def installed() -> str | None:
    """Why the provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return "tests/oidc_provider/node_modules (npm ci)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OidcProvider:
    def __init__(self, *, redirect_uri: str, post_logout_redirect_uri: str, port: int = 0):
        self.port = port or _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.log_path = PROVIDER_DIR.parent.parent / "var" / "test" / f"oidc-{self.port}.log"
        self._command = [
            "node",
            str(PROVIDER_DIR / "provider.js"),
            "--port",
            str(self.port),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            redirect_uri,
            "--post-logout-redirect-uri",
            post_logout_redirect_uri,
            "--users",
            str(PROVIDER_DIR / "users.json"),
            "--test-controls",
        ]
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> OidcProvider:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self._process = subprocess.Popen(
                self._command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the OIDC provider did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            stop_group(self._process)

    def _answers(self) -> bool:
        try:
            return httpx.get(self.discovery_url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _control(self, path: str, body: dict) -> dict:
        response = httpx.post(f"{self.issuer}/_test/{path}", json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """The people of users.json, and a provider that behaves."""
        self._control("reset", {})

    def set_groups(self, username: str, groups) -> None:
        """The groups the provider names for ``username`` (any JSON: a test may send what no
        provider should)."""
        self._control("users", {"username": username, "person": {"groups": groups}})

    def misbehave(self, **mode) -> None:
        """``id_token=`` expired | wrong_key | wrong_issuer | wrong_audience | wrong_nonce;
        ``token_delay_ms=``; ``token_down=True`` (the token endpoint drops the connection)."""
        self._control("mode", mode)


def provider_answer(client: httpx.Client, username: str, password: str) -> str:
    """Start a company sign-in on our site (``client.base_url``) and sign in at the provider as
    a browser would (redirects, the provider's form); returns the address the provider sends
    the browser back to, our callback with its code and state, not yet followed."""
    callback = str(client.base_url.join("/oidc/callback/"))
    response = client.get("/oidc/authenticate/")
    while True:
        if response.is_redirect:
            url = str(response.url.join(response.headers["location"]))
            if url.startswith(callback):
                return url
            response = client.get(url)
        elif response.status_code == 200 and 'name="password"' in response.text:
            action = re.search(r'action="([^"]+)"', response.text).group(1)
            data = {"username": username, "password": password}
            response = client.post(str(response.url.join(action)), data=data)
        else:
            raise AssertionError(
                f"{response.status_code} from {response.url}: {response.text[:500]}"
            )


def sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """A whole company sign-in; returns our callback's answer."""
    return client.get(provider_answer(client, username, password))
