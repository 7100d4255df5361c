"""The token API over real HTTP: the live server (a real server thread on 127.0.0.1) and httpx,
as a pipeline or the command line calls it."""

import httpx
import pytest

from api import tokens

SERVICE = "pix-immo-api"
PRODUCTION = f"/environments/{SERVICE}/production"


def token_of(user, name="pipeline", days=30) -> str:
    """A new personal token of ``user``: the whole token, as shown once."""
    return tokens.issue_personal(person=user, name=name, days=days).secret


def service_token(admin, *, account="ci-deploy", role="tech lead") -> str:
    return tokens.issue_service(
        admin=admin,
        account_name=account,
        role=role,
        name=f"{account} token",
        days=30,
    ).secret


@pytest.fixture
def api(live_server):
    """``api(token)``: an httpx client of /api/v1 sending that bearer token (none: no header)."""
    clients = []

    def client(token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        opened = httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30)
        clients.append(opened)
        return opened

    yield client
    for opened in clients:
        opened.close()


def assert_problem(response, status: int) -> dict:
    """An RFC 9457 problem with ``status`` and a sentence for a person."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert body["detail"].strip(), body
    return body
