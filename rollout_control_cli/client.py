"""The HTTP client of /api/v1: a bearer token on every call, and every failure turned into an
error that says what happened and what to do — problem+json answers (RFC 9457), answers that
are not JSON (a proxy's error page), and a server that cannot be reached."""

from __future__ import annotations

from typing import Any

import httpx

from .config import TOKEN_VARIABLE
from .errors import ERROR, REFUSED, CliError
from .words import N_, _, accept_language

API_PATH = "/api/v1"
TIMEOUT_SECONDS = 30.0
USER_AGENT = "rollout-control-cli"
# What a person can do about a status, said after the server's own words.
HINTS = {
    401: N_(
        "the server did not accept the token: run `rollout-control login` again or set {variable}"
    ),
    403: N_("the token's user lacks the permission for this (`rollout-control whoami` lists them)"),
}


class ApiError(CliError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, problem: dict) -> None:
        super().__init__(message, exit_code=REFUSED if status in (403, 409) else ERROR)
        self.status = status
        self.problem = problem

    @property
    def retry_after(self) -> float | None:
        value = self.problem.get("retry_after")
        return float(value) if isinstance(value, int | float) else None


def api_error(response: httpx.Response) -> ApiError:
    problem = _problem(response)
    status = response.status_code
    title = problem.get("title") or response.reason_phrase or _("error")
    detail = problem.get("detail") or ""
    lines = [f"{title} (HTTP {status})" + (f": {detail}" if detail else "")]
    for error in problem.get("errors") or []:
        if not isinstance(error, dict):
            continue
        line = f"{error.get('field') or _('(body)')}: {error.get('message', '')}"
        if line not in detail:
            lines.append(f"  {line}")
    if status == 409 and "current_version" in problem:
        lines.append(
            "  "
            + _(
                "the desired config is now at version {version}: check `rollout-control status` "
                "and try again",
                version=problem["current_version"],
            )
        )
    retry_after = response.headers.get("retry-after")
    if status == 429 and retry_after:
        lines.append("  " + _("try again in {seconds} s", seconds=retry_after))
        try:
            problem["retry_after"] = float(retry_after)
        except ValueError:
            pass
    if status in HINTS:
        lines.append("  " + _(HINTS[status], variable=TOKEN_VARIABLE))
    return ApiError(status, "\n".join(lines), problem)


def _problem(response: httpx.Response) -> dict:
    """The problem document, or a detail made of the start of a body that is not one."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:200]
        return {"detail": text} if text else {}
    return body if isinstance(body, dict) else {}


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout = timeout
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, application/problem+json",
            "User-Agent": USER_AGENT,
        }
        language = accept_language()
        if language:
            headers["Accept-Language"] = language
        self._http = httpx.Client(base_url=api_base(url), headers=headers, timeout=timeout)

    def get(self, path: str, **params: Any) -> Any:
        query = {key: value for key, value in params.items() if value is not None}
        return self._json(self.send("GET", path, params=query))

    def post(self, path: str, body: dict) -> Any:
        return self._json(self.send("POST", path, json=body))

    def text(self, path: str) -> str:
        return self.send("GET", path).text

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise CliError(
                _(
                    "{url} answered {status} with something that is not JSON: is it the "
                    "dashboard's address?",
                    url=self.url,
                    status=response.status_code,
                )
            ) from None

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(
                _(
                    "no answer from {url} within {seconds} s: the server is busy or down; what "
                    "you asked for may or may not have happened (check the status)",
                    url=self.url,
                    seconds=f"{self.timeout:g}",
                )
            ) from None
        except httpx.HTTPError as error:
            raise CliError(
                _("cannot reach {url}: {error}", url=self.url, error=error or type(error).__name__)
            ) from None
        if response.is_error:
            raise api_error(response)
        if response.is_redirect:
            raise CliError(
                _(
                    "{url} answered with a redirect to {location}: is it the dashboard's address?",
                    url=self.url,
                    location=response.headers.get("location"),
                )
            )
        return response


def api_base(url: str) -> str:
    """The dashboard's address as people give it, with or without /api/v1 at its end."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH
