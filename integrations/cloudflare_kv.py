"""Cloudflare API v4, Workers KV subset: the only place that builds its URLs and reads its answers.

Paths under ``{base}/accounts/{account}/storage/kv/namespaces/{namespace}``. ``GET values/{key}``
answers the raw bytes (no envelope) or 404 with error 10009; every other call answers the v4
envelope ``{"success", "errors": [{"code", "message"}], "messages", "result"}``.
"""

from dataclasses import dataclass

import httpx

KEY_NOT_FOUND = 10009
NAMESPACE_NOT_FOUND = 10013
AUTHENTICATION_ERROR = 10000


# A write whose request went out but whose answer never came may still be applied by the API
# later: the request was sent, then the wait for the answer timed out or the connection closed.
# Connect errors and pool timeouts mean nothing was sent; any HTTP answer says what happened.
_ANSWER_LOST = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class KVError(Exception):
    """A call that did not do what was asked. ``transient`` says whether trying again may help;
    ``may_have_landed`` that a write got no answer and may still be applied by the API later."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        may_have_landed: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.may_have_landed = may_have_landed


@dataclass(frozen=True)
class Namespace:
    id: str
    title: str


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, min(seconds, 3600.0))


def first_error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return first.get("code"), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, response.text[:200].strip()


class KVClient:
    """One namespace of one account. Every call is bounded by ``timeout`` seconds."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        account_id: str,
        namespace_id: str,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.namespace_id = namespace_id
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}"}

    def close(self):
        """Close the client if this object built it; a shared client stays open."""
        if self._owns_client:
            self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def _namespace_url(self) -> str:
        return (
            f"{self.base_url}/accounts/{self.account_id}/storage/kv/namespaces/{self.namespace_id}"
        )

    def _request(
        self, method: str, url: str, *, headers: dict | None = None, **kwargs
    ) -> httpx.Response:
        try:
            return self._client.request(
                method, url, headers={**self._headers, **(headers or {})}, **kwargs
            )
        except httpx.TransportError as exc:
            # A read cannot land; only a write that went out unanswered may change KV later.
            may_have_landed = method not in ("GET", "HEAD") and isinstance(exc, _ANSWER_LOST)
            if isinstance(exc, httpx.TimeoutException):
                message = f"Cloudflare API timed out ({type(exc).__name__})"
            else:
                message = f"Cloudflare API unreachable: {exc}"
            if may_have_landed:
                message += "; the write got no answer and may still be applied"
            raise KVError(message, transient=True, may_have_landed=may_have_landed) from exc

    def _raise_for(self, response: httpx.Response, what: str):
        status = response.status_code
        code, message = first_error(response)
        detail = f"{what}: HTTP {status}" + (f", error {code}" if code else "")
        detail += f": {message}" if message else ""
        if status == 429:
            raise KVError(
                detail,
                transient=True,
                status=status,
                code=code,
                retry_after=retry_after_of(response),
            )
        if status >= 500:
            raise KVError(detail, transient=True, status=status, code=code)
        if status in (401, 403) or code == AUTHENTICATION_ERROR:
            raise KVError(
                f"{detail} (check the API token and its KV permissions)",
                transient=False,
                status=status,
                code=code,
            )
        raise KVError(detail, transient=False, status=status, code=code)

    def verify_token(self) -> None:
        response = self._request("GET", f"{self.base_url}/user/tokens/verify")
        if response.status_code != 200:
            self._raise_for(response, "token check")
        try:
            status = response.json()["result"]["status"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KVError("token check: malformed answer", transient=True) from exc
        if status != "active":
            raise KVError(f"token check: the token is {status}", transient=False)

    def get_namespace(self) -> Namespace:
        response = self._request("GET", self._namespace_url)
        if response.status_code != 200:
            code, _ = first_error(response)
            if code == NAMESPACE_NOT_FOUND or response.status_code == 404:
                raise KVError(
                    f"namespace {self.namespace_id} not found in account {self.account_id}",
                    transient=False,
                    status=response.status_code,
                    code=code,
                )
            self._raise_for(response, "namespace lookup")
        try:
            result = response.json()["result"]
            return Namespace(id=str(result["id"]), title=str(result.get("title", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise KVError("namespace lookup: malformed answer", transient=True) from exc

    def get_value(self, key: str = "config") -> bytes | None:
        """The raw stored bytes, or None when the key does not exist."""
        response = self._request("GET", f"{self._namespace_url}/values/{key}")
        if response.status_code == 200:
            return response.content
        if response.status_code == 404:
            code, _ = first_error(response)
            if code == KEY_NOT_FOUND:
                return None
            if code == NAMESPACE_NOT_FOUND:
                raise KVError(
                    f"namespace {self.namespace_id} not found",
                    transient=False,
                    status=404,
                    code=code,
                )
        self._raise_for(response, f"read of key {key!r}")

    def put_value(self, raw: str, key: str = "config") -> None:
        response = self._request(
            "PUT",
            f"{self._namespace_url}/values/{key}",
            content=raw.encode("utf-8"),
            headers={"Content-Type": "text/plain"},
        )
        if response.status_code != 200:
            self._raise_for(response, f"write of key {key!r}")
        # A 200 with a malformed or unsuccessful envelope is not trusted either way:
        # the caller reads the value back and compares, which is the real proof.
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and body.get("success") is False:
            self._raise_for(response, f"write of key {key!r}")
