"""The HTTP client of /api/v1: a bearer token on every call, and every failure turned into an
error that says what happened and what to do — problem+json answers (RFC 9457), answers that
are not JSON (a proxy's error page), and a server that cannot be reached."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from .config import TOKEN_VARIABLE
from .errors import ERROR, REFUSED, CliError

API_PATH = "/api/v1"
TIMEOUT_SECONDS = 30.0
USER_AGENT = "rollout-control-cli"
# What a person can do about a status, said after the server's own words.
HINTS = {
    401: "the server did not accept the token: run `rollout-control login` again "
    f"or set {TOKEN_VARIABLE}",
    403: "the token's user lacks the permission for this (`rollout-control whoami` lists them)",
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
    title = problem.get("title") or response.reason_phrase or "error"
    detail = problem.get("detail") or ""
    lines = [f"{title} (HTTP {status})" + (f": {detail}" if detail else "")]
    for error in problem.get("errors") or []:
        if not isinstance(error, dict):
            continue
        line = f"{error.get('field') or '(body)'}: {error.get('message', '')}"
        if line not in detail:
            lines.append(f"  {line}")
    if status == 409 and "current_version" in problem:
        lines.append(
            f"  the desired config is now at version {problem['current_version']}: "
            "check `rollout-control status` and try again"
        )
    retry_after = response.headers.get("retry-after")
    if status == 429 and retry_after:
        lines.append(f"  try again in {retry_after} s")
        try:
            problem["retry_after"] = float(retry_after)
        except ValueError:
            pass
    if status in HINTS:
        lines.append(f"  {HINTS[status]}")
    return ApiError(status, "\n".join(lines), problem)


def _problem(response: httpx.Response) -> dict:
    """The problem document, or a detail made of the start of a body that is not one."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:200]
        return {"detail": text} if text else {}
    return body if isinstance(body, dict) else {}


def accept_language(environ: Mapping[str, str] = os.environ) -> str | None:
    """The language of the person's environment, as HTTP names it: the first of ``LC_ALL``,
    ``LC_MESSAGES`` and ``LANG`` that is set (POSIX's order for messages), "de_DE.UTF-8" → "de".
    None for the C locale or none set: the server answers in its default, English. The server's
    words (a refusal, a problem's title and detail) come in this language, unless the token's
    person chose theirs on "Your settings"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            language = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return language if language.isalpha() and language not in ("c", "posix") else None
    return None


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
                f"{self.url} answered {response.status_code} with something that is not JSON: "
                "is it the dashboard's address?"
            ) from None

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(
                f"no answer from {self.url} within {self.timeout:g} s: the server is busy or "
                "down; what you asked for may or may not have happened (check the status)"
            ) from None
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach {self.url}: {error or type(error).__name__}") from None
        if response.is_error:
            raise api_error(response)
        if response.is_redirect:
            raise CliError(
                f"{self.url} answered with a redirect to {response.headers.get('location')}: "
                "is it the dashboard's address?"
            )
        return response


def api_base(url: str) -> str:
    """The dashboard's address as people give it, with or without /api/v1 at its end."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH
