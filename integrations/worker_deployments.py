"""Cloudflare API v4, Workers deployments: which version of a Worker script serves traffic.

``GET {base}/accounts/{account}/workers/scripts/{script}/deployments`` answers the v4 envelope
with ``result.deployments``, newest first; the first one is the deployment serving traffic. Each
has ``id``, ``created_on``, ``source``, ``strategy``, ``versions`` (``version_id``,
``percentage``: one version, or two under a gradual deployment), ``annotations``
(``workers/message``, ``workers/triggered_by``) and ``author_email``.

A failed read is a ``DeploymentsError`` whose ``kind`` names what went wrong in words a page can
show as a state (the token, the script, the rate limit, the answer, the network); it never
escapes as anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from .cloudflare_kv import AUTHENTICATION_ERROR, first_error, retry_after_of

SCRIPT_NOT_FOUND = 10007


class Failure:
    """What a failed read was, for the page's state and for deciding when to read again."""

    AUTH = "auth"
    MISSING_SCRIPT = "missing_script"
    RATE_LIMITED = "rate_limited"
    MALFORMED = "malformed"
    UNREACHABLE = "unreachable"
    SERVER = "server"
    REFUSED = "refused"


class DeploymentsError(Exception):
    def __init__(self, kind: str, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.message, self.retry_after = kind, message, retry_after


@dataclass(frozen=True)
class Version:
    version_id: str
    percentage: float

    def as_dict(self) -> dict:
        return {"version_id": self.version_id, "percentage": self.percentage}


@dataclass(frozen=True)
class Deployment:
    id: str
    created_on: datetime | None
    source: str
    strategy: str
    versions: tuple[Version, ...]
    message: str
    triggered_by: str
    author_email: str


class DeploymentsClient:
    """The deployments of one account's Worker scripts. Every call is bounded by the client's
    timeout."""

    def __init__(self, *, base_url: str, token: str, account_id: str, client: httpx.Client):
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"}

    def deployments(self, script_name: str) -> list[Deployment]:
        """The script's deployments, the one serving traffic first."""
        url = (
            f"{self.base_url}/accounts/{self.account_id}/workers/scripts/{script_name}/deployments"
        )
        try:
            response = self._client.get(url, headers=self._headers)
        except httpx.TransportError as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
            raise DeploymentsError(
                Failure.UNREACHABLE, f"Cloudflare API {kind} ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise _error_of(response, script_name)
        try:
            body = response.json()
        except ValueError:
            raise DeploymentsError(
                Failure.MALFORMED, "the answer is not JSON: " + _excerpt(response.text)
            ) from None
        return parse_deployments(body)


def _error_of(response: httpx.Response, script_name: str) -> DeploymentsError:
    status = response.status_code
    code, message = first_error(response)
    said = (
        f"HTTP {status}" + (f", error {code}" if code else "") + (f": {message}" if message else "")
    )
    if status == 429:
        return DeploymentsError(
            Failure.RATE_LIMITED,
            f"rate limited by the Cloudflare API ({said})",
            retry_after=retry_after_of(response),
        )
    if status in (401, 403) or code == AUTHENTICATION_ERROR:
        return DeploymentsError(
            Failure.AUTH,
            f"the API token was refused ({said}): it needs the permission Workers Scripts Read",
        )
    if status == 404 or code == SCRIPT_NOT_FOUND:
        return DeploymentsError(
            Failure.MISSING_SCRIPT, f"no Worker script named {script_name!r} ({said})"
        )
    if status >= 500:
        return DeploymentsError(Failure.SERVER, f"the Cloudflare API failed ({said})")
    return DeploymentsError(Failure.REFUSED, f"the Cloudflare API refused the read ({said})")


def parse_deployments(body: object) -> list[Deployment]:
    """The deployments of a v4 envelope; DeploymentsError(MALFORMED) says what is wrong."""
    if not isinstance(body, dict):
        raise _malformed("the answer is not a JSON object")
    if body.get("success") is False:
        errors = body.get("errors") or []
        first = errors[0] if isinstance(errors, list) and errors else {}
        said = first.get("message", "") if isinstance(first, dict) else ""
        raise _malformed(f"the answer says success: false ({said or 'no error given'})")
    result = body.get("result")
    deployments = result.get("deployments") if isinstance(result, dict) else None
    if not isinstance(deployments, list):
        raise _malformed("the answer has no result.deployments list")
    return [_deployment(item, index) for index, item in enumerate(deployments)]


def _deployment(item: object, index: int) -> Deployment:
    where = f"deployment {index + 1}"
    if not isinstance(item, dict):
        raise _malformed(f"{where} is not an object")
    deployment_id = item.get("id")
    if not isinstance(deployment_id, str) or not deployment_id.strip():
        raise _malformed(f"{where} has no id")
    versions = item.get("versions")
    if not isinstance(versions, list) or not versions:
        raise _malformed(f"{where} ({deployment_id}) lists no versions")
    annotations = item.get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    return Deployment(
        id=deployment_id.strip()[:64],
        created_on=_moment(item.get("created_on")),
        source=_text(item.get("source"), 32),
        strategy=_text(item.get("strategy"), 32),
        versions=tuple(_version(version, where) for version in versions),
        message=_text(annotations.get("workers/message"), 500),
        triggered_by=_text(annotations.get("workers/triggered_by"), 64),
        author_email=_text(item.get("author_email"), 254),
    )


def _version(item: object, where: str) -> Version:
    if not isinstance(item, dict):
        raise _malformed(f"{where}: a version is not an object")
    version_id = item.get("version_id")
    percentage = item.get("percentage")
    if not isinstance(version_id, str) or not version_id.strip():
        raise _malformed(f"{where}: a version has no version_id")
    if isinstance(percentage, bool) or not isinstance(percentage, int | float):
        raise _malformed(f"{where}: version {version_id} has no percentage")
    if not 0 <= percentage <= 100:
        raise _malformed(f"{where}: version {version_id} has percentage {percentage}")
    return Version(version_id.strip()[:64], float(percentage))


def _moment(value: object) -> datetime | None:
    """Cloudflare's ``created_on`` (RFC 3339, with Z or an offset, maybe with fractions)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return (text[:120] + "…") if len(text) > 120 else text or "(empty)"


def _malformed(message: str) -> DeploymentsError:
    return DeploymentsError(Failure.MALFORMED, f"malformed answer: {message}")
