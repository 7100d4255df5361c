"""The edge worker's public face: the ``X-Pix-Canary`` header and ``GET /api/qa``.

``X-Pix-Canary: 1;tag=B2a;cohort=native;reason=sampled``. Parsed tolerantly (any order, spaces,
unknown keys), with what was odd reported in ``problems`` instead of raised.

Nothing the network sends is trusted: every way an answer can be wrong (no header, a header that
does not parse, a body that is not JSON or lacks fields, wrong types, another environment, a
component in error, a timeout, a redirect loop, a huge or endless body) comes back as a reason in
words, never as an exception: a ``Said`` (integrations/said.py), English for the record with its
message, which a page says in its reader's language; what the edge sent stays as it was sent.
"""

import asyncio
import functools
import json
import math
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar

import httpx
from django.utils.translation import gettext_noop

from .said import Said

COHORTS = ("native", "proxy")
REASONS = ("sampled", "cookie", "header", "emergency")
COHORT_COOKIE = "_canary_cohort"
MAX_BODY_BYTES = 64 * 1024
HEALTH_COMPONENTS = ("database", "r2_bucket", "proxy_origin")
HEALTHY_STATUSES = ("healthy", "ok")
MAX_REDIRECTS = 5
# A Retry-After beyond this is not believed: a probe run must end.
MAX_RETRY_AFTER_SECONDS = 60.0
TIMED_OUT = gettext_noop("timed out")
REDIRECT_LOOP = gettext_noop("too many redirects (a redirect loop?)")
HTTP_STATUS = gettext_noop("HTTP %(status)s")
LACKS = gettext_noop("body lacks %(key)s")
EXPECTED = gettext_noop("%(key)s is %(value)s, expected %(expected)s")
UNKNOWN_KEY = gettext_noop("the body carries an unknown key %(key)s")
A_STRING = gettext_noop("a string")


@dataclass
class CanaryHeader:
    version: str | None = None
    tag: str | None = None
    cohort: str | None = None
    reason: str | None = None
    unknown: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.cohort in COHORTS and not any(p.startswith("bad") for p in self.problems)


def parse_canary_header(value: str | None) -> CanaryHeader:
    header = CanaryHeader()
    if value is None or not value.strip():
        header.problems.append("bad header: missing or empty")
        return header
    parts = [part.strip() for part in value.split(";")]
    for part in parts:
        if not part:
            continue
        if "=" not in part:
            if header.version is None:
                header.version = part
            else:
                header.problems.append(f"unknown: stray element {part!r}")
            continue
        key, _, raw = part.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if key in ("tag", "cohort", "reason"):
            if getattr(header, key) is not None:
                header.problems.append(f"unknown: {key} given twice")
            setattr(header, key, raw)
        else:
            header.unknown[key] = raw
            header.problems.append(f"unknown: key {key!r}")
    if header.version != "1":
        header.problems.append(f"unknown: version {header.version!r}")
    if header.cohort is None:
        header.problems.append("bad header: no cohort")
    elif header.cohort not in COHORTS:
        header.problems.append(f"bad header: cohort {header.cohort!r} is not native or proxy")
    if header.reason is not None and header.reason not in REASONS:
        header.problems.append(f"unknown: reason {header.reason!r}")
    return header


@dataclass
class EdgeReport:
    """What one ``/api/qa`` request showed. ``error`` is set when it could not be read."""

    url: str
    status_code: int | None = None
    latency_ms: float | None = None
    header: CanaryHeader | None = None
    body: dict | None = None
    cookie_set: str | None = None
    retry_after: float | None = None
    error: str | None = None
    # The value of the ``_canary_cohort`` cookie the answer set, if it set one.
    cookie_cohort: str | None = None
    header_raw: str | None = None
    # The start of a body that could not be read as a JSON object, for the record.
    body_excerpt: str = ""
    # The attributes of that cookie (lower-case names: ``{"max-age": "86400", "secure": ""}``).
    cookie_attributes: dict | None = None

    @property
    def canary(self) -> dict:
        canary = (self.body or {}).get("canary")
        return canary if isinstance(canary, dict) else {}

    def reports(self, *, percent: int, tag: str, emergency: bool) -> bool:
        """Whether the edge serves this configuration (the change is *in effect*)."""
        canary = self.canary
        if self.error or canary.get("emergency_proxy") is not emergency:
            return False
        if emergency:
            # With the emergency flag on, percent is irrelevant to routing.
            return canary.get("tag") == tag
        return canary.get("percent") == percent and canary.get("tag") == tag

    def summary(self) -> dict:
        """A JSON-safe record of what the edge reported."""
        return {
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "canary": self.canary,
            "status": (self.body or {}).get("status"),
            "environment": (self.body or {}).get("environment"),
            "health": (self.body or {}).get("health"),
            "header_problems": self.header.problems if self.header else [],
            "error": self.error,
            # The error's message, said on a page in its reader's language.
            **({"error_said": self.error.words()} if isinstance(self.error, Said) else {}),
        }


def probe_qa(
    url: str,
    *,
    client: httpx.Client,
    headers: dict | None = None,
    cookies: dict | None = None,
    max_seconds: float | None = None,
) -> EdgeReport:
    """One request to ``/api/qa`` (fresh client unless cookies are given); never raises.

    ``max_seconds`` bounds the whole exchange: the client's timeout bounds each read, so a server
    that drips an endless body one byte at a time would otherwise hold the probe for ever.
    """
    report = EdgeReport(url=url)
    request_headers = dict(headers or {})
    if cookies:
        request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    started = time.perf_counter()
    try:
        with client.stream("GET", url, headers=request_headers) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    report.error = Said(
                        gettext_noop("body larger than %(limit)s bytes"), limit=MAX_BODY_BYTES
                    )
                    break
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    report.error = Said(
                        gettext_noop("timed out (body still arriving after %(seconds)ss)"),
                        seconds=f"{max_seconds:g}",
                    )
                    break
    except httpx.TimeoutException:
        report.error = Said(TIMED_OUT)
        return report
    except httpx.TooManyRedirects:
        report.error = Said(REDIRECT_LOOP)
        return report
    except httpx.HTTPError as exc:
        report.error = Said(gettext_noop("unreachable: %(error)s"), error=str(exc))
        return report
    report.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    report.status_code = response.status_code
    if response.status_code == 429:
        report.retry_after = parse_retry_after(response.headers.get("retry-after"))
        report.error = report.error or Said(gettext_noop("rate limited (429)"))
        return report
    report.header_raw = response.headers.get("x-pix-canary")
    report.header = parse_canary_header(report.header_raw)
    report.cookie_set = response.headers.get("set-cookie")
    report.cookie_cohort = cohort_cookie(response.headers)
    report.cookie_attributes = cohort_cookie_attributes(response.headers)
    if report.error:
        return report
    if response.status_code != 200:
        report.error = Said(HTTP_STATUS, status=response.status_code)
    try:
        parsed = json.loads(body, parse_constant=_not_json, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError):
        report.error = report.error or Said(gettext_noop("body is not JSON"))
        report.body_excerpt = body[:300].decode("utf-8", "replace")
        return report
    if not isinstance(parsed, dict):
        report.error = report.error or Said(gettext_noop("body is JSON but not an object"))
        report.body_excerpt = body[:300].decode("utf-8", "replace")
        return report
    report.body = parsed
    return report


# --- reading answers ----------------------------------------------------------------------------


def _not_json(name: str):
    # Python reads NaN and Infinity, JSON has neither, and PostgreSQL refuses them in jsonb:
    # a body carrying them would break the row that records it.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment is None or moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def cohort_cookie(headers: httpx.Headers) -> str | None:
    """The value of the ``_canary_cohort`` cookie among the answer's Set-Cookie headers (the
    last one, as a browser keeps it)."""
    found = None
    for value in headers.get_list("set-cookie"):
        name, _, rest = value.partition("=")
        if name.strip() == COHORT_COOKIE:
            found = rest.split(";", 1)[0].strip()
    return found


def cohort_cookie_attributes(headers: httpx.Headers) -> dict | None:
    """The attributes of the last ``_canary_cohort`` Set-Cookie, names lower-cased; None when
    the answer set no such cookie."""
    found = None
    for value in headers.get_list("set-cookie"):
        name, _, rest = value.partition("=")
        if name.strip() != COHORT_COOKIE:
            continue
        found = {}
        for part in rest.split(";")[1:]:
            key, _, attribute = part.strip().partition("=")
            if key:
                found[key.strip().lower()] = attribute.strip()
    return found


def _is_int(value) -> bool:
    # bool is a subclass of int: true must not read as 1 %.
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def validate_qa_body(body: dict, *, expected_environment: str | None = None) -> list[str]:
    """What is wrong with an ``/api/qa`` document, one sentence each (empty when it is fine).

    Contract (docs/contracts.md): ``status``, ``environment``, ``canary{percent, tag,
    emergency_proxy, cohort, reason}``, ``health{database, r2_bucket, proxy_origin}``, each
    component ``"ok"`` or ``"error: <text>"``.
    """
    problems = []
    for key, kind in (("status", str), ("environment", str), ("canary", dict), ("health", dict)):
        if key not in body:
            problems.append(Said(LACKS, key=repr(key)))
        elif not isinstance(body[key], kind):
            expected = Said(gettext_noop("an object") if kind is dict else A_STRING)
            problems.append(
                Said(EXPECTED, key=repr(key), value=_type_name(body[key]), expected=expected)
            )
    environment = body.get("environment")
    if (
        expected_environment is not None
        and isinstance(environment, str)
        and environment != expected_environment
    ):
        problems.append(
            Said(
                gettext_noop("answered for environment %(answered)s, but %(probed)s was probed"),
                answered=repr(environment),
                probed=repr(expected_environment),
            )
        )
    canary = body.get("canary")
    if isinstance(canary, dict):
        problems += _canary_problems(canary)
    health = body.get("health")
    if isinstance(health, dict):
        problems += _health_problems(health)
    status = body.get("status")
    if isinstance(status, str) and status not in HEALTHY_STATUSES:
        problems.append(Said(gettext_noop("status is %(status)s"), status=repr(status)))
    return problems


def _canary_problems(canary: dict) -> list[str]:
    problems = []
    checks = (
        ("percent", lambda v: _is_int(v) and 0 <= v <= 100, gettext_noop("an integer 0–100")),
        ("tag", lambda v: isinstance(v, str), A_STRING),
        ("emergency_proxy", lambda v: isinstance(v, bool), gettext_noop("true or false")),
        ("cohort", lambda v: v in COHORTS, gettext_noop('"native" or "proxy"')),
        ("reason", lambda v: isinstance(v, str), A_STRING),
    )
    for key, valid, expected in checks:
        if key not in canary:
            problems.append(Said(LACKS, key=f"'canary.{key}'"))
        elif not valid(canary[key]):
            problems.append(
                Said(
                    EXPECTED,
                    key=f"'canary.{key}'",
                    value=_short(canary[key]),
                    expected=Said(expected),
                )
            )
    return problems


def _health_problems(health: dict) -> list[str]:
    problems = []
    for component in HEALTH_COMPONENTS:
        state = health.get(component)
        key = f"'health.{component}'"
        if component not in health:
            problems.append(Said(LACKS, key=key))
        elif not isinstance(state, str):
            problems.append(
                Said(EXPECTED, key=key, value=_type_name(state), expected=Said(A_STRING))
            )
        elif state.startswith("error:"):
            problems.append(
                Said(
                    gettext_noop("%(component)s reports %(state)s"),
                    component=component,
                    state=state[:200],
                )
            )
        elif state != "ok":
            expected = Said(gettext_noop('"ok" or "error: …"'))
            problems.append(Said(EXPECTED, key=key, value=repr(state[:100]), expected=expected))
    return problems


def header_problem(report: EdgeReport) -> str | None:
    """Why the answer's X-Pix-Canary header cannot be read, if it cannot."""
    header = report.header
    if not (report.header_raw or "").strip() or header is None:
        return Said(gettext_noop("no X-Pix-Canary header"))
    if header.valid:
        return None
    # The header is there but does not parse: a cohort is missing, or not one of ours
    # (``parse_canary_header``'s "bad header" problems).
    if header.cohort is None:
        why = Said(gettext_noop("no cohort"))
    else:
        why = Said(
            gettext_noop("cohort %(cohort)s is not native or proxy"), cohort=repr(header.cohort)
        )
    return Said(
        gettext_noop("X-Pix-Canary header %(header)s does not parse (%(why)s)"),
        header=_short(report.header_raw),
        why=why,
    )


def body_disagreement(report: EdgeReport) -> str | None:
    """Where the body names another cohort or reason than the header. A body value outside the
    contract is left to ``validate_qa_body``, so that one fault gives one reason."""
    header = report.header
    if header is None or not header.valid:
        return None
    said = gettext_noop(
        "the X-Pix-Canary header says %(key)s=%(header)s but the body says %(key)s=%(body)s"
    )
    cohort, reason = report.canary.get("cohort"), report.canary.get("reason")
    if cohort in COHORTS and cohort != header.cohort:
        return Said(said, key="cohort", header=header.cohort, body=cohort)
    if isinstance(reason, str) and header.reason is not None and reason != header.reason:
        return Said(said, key="reason", header=header.reason, body=reason[:40])
    return None


def cookie_problem(report: EdgeReport) -> str | None:
    """What is wrong with the ``_canary_cohort`` cookie that keeps a client in its cohort."""
    header = report.header
    cohort = header.cohort if header is not None and header.valid else None
    cookie = report.cookie_cohort
    if cookie is None and cohort:
        return Said(
            gettext_noop(
                "no %(cookie)s cookie set, expected %(wanted)s to keep the client in its cohort"
            ),
            cookie=COHORT_COOKIE,
            wanted=f"{COHORT_COOKIE}={cohort}",
        )
    if cookie is None:
        return Said(
            gettext_noop("no %(cookie)s cookie set, expected one to keep the client in its cohort"),
            cookie=COHORT_COOKIE,
        )
    if cookie not in COHORTS:
        return Said(
            gettext_noop("the %(cookie)s cookie holds %(value)s, expected native or proxy"),
            cookie=COHORT_COOKIE,
            value=_short(cookie),
        )
    if cohort is not None and cookie != cohort:
        return Said(
            gettext_noop(
                "the %(cookie)s cookie says %(value)s but the X-Pix-Canary header says "
                "cohort=%(cohort)s"
            ),
            cookie=COHORT_COOKIE,
            value=cookie,
            cohort=cohort,
        )
    return None


def is_sampled(report: EdgeReport) -> bool:
    return report.header is not None and report.header.valid and report.header.reason == "sampled"


def judge_qa(report: EdgeReport, *, expected_environment: str | None) -> list[str]:
    """Every reason a health probe fails, most telling first; empty when the edge is healthy.

    The one judgement of an ``/api/qa`` answer, with ``qa_warnings`` for an answer that works:
    the health check and the preview suite build on both.
    """
    if report.error:
        return [report.error]
    problems = [header_problem(report)]
    problems += validate_qa_body(report.body or {}, expected_environment=expected_environment)
    problems.append(body_disagreement(report))
    if is_sampled(report):
        # A sampled client must be made sticky, or it is re-drawn on every request.
        problems.append(cookie_problem(report))
    return [problem for problem in problems if problem]


CANARY_KEYS = ("percent", "tag", "emergency_proxy", "cohort", "reason")
DOCUMENT_KEYS = ("status", "environment", "canary", "health")


def qa_warnings(report: EdgeReport) -> list[str]:
    """What an answer that works carries beyond the contract, one sentence each: unknown keys,
    versions or reasons in X-Pix-Canary or the body, health components the contract does not
    name, a cohort cookie without ``Secure``.

    docs/contracts.md says to read such answers tolerantly *and* flag what is unknown: each of
    these is a warning (a newer worker, a misconfigured route), never a failure, so a check
    with nothing but warnings still counts as the edge answering.
    """
    if report.error:
        return []
    warnings = []
    header = report.header
    if header is not None and header.valid:
        warnings += [
            _header_oddity(problem.removeprefix("unknown: "), header)
            for problem in header.problems
            if problem.startswith("unknown: ")
        ]
    body = report.body or {}
    warnings += [Said(UNKNOWN_KEY, key=_short(key)) for key in body if key not in DOCUMENT_KEYS]
    canary = report.canary
    warnings += [Said(UNKNOWN_KEY, key=f"'canary.{_short(key)[1:-1]}'")
                 for key in canary if key not in CANARY_KEYS]  # fmt: skip
    reason = canary.get("reason")
    header_reason = header.reason if header is not None else None
    if isinstance(reason, str) and reason not in REASONS and reason != header_reason:
        warnings.append(
            Said(gettext_noop("the body gives an unknown reason %(reason)s"), reason=_short(reason))
        )
    health = body.get("health")
    if isinstance(health, dict):
        warnings += [
            Said(
                gettext_noop(
                    "health reports a component the contract does not name: %(name)s is %(state)s"
                ),
                name=_short(name),
                state=_short(state),
            )
            for name, state in health.items()
            if name not in HEALTH_COMPONENTS
        ]
    attributes = report.cookie_attributes
    if attributes is not None and "secure" not in attributes:
        warnings.append(
            Said(
                gettext_noop(
                    "the %(cookie)s cookie is not Secure (a browser would send it over plain HTTP)"
                ),
                cookie=COHORT_COOKIE,
            )
        )
    return warnings


def _header_oddity(problem: str, header: CanaryHeader) -> str:
    """``key 'region'`` → ``X-Pix-Canary has an unknown key 'region' (=fra)``."""
    kind, _, rest = problem.partition(" ")
    if kind == "key":
        value = header.unknown.get(rest.strip("'"), "")
        return Said(
            gettext_noop("X-Pix-Canary has an unknown key %(key)s (=%(value)s)"),
            key=rest,
            value=_short(value)[1:-1],
        )
    if kind == "version":
        return Said(gettext_noop("X-Pix-Canary has an unknown version %(value)s"), value=rest)
    if kind == "reason":
        return Said(gettext_noop("X-Pix-Canary has an unknown reason %(value)s"), value=rest)
    if kind == "stray":  # "stray element 'x'"
        return Said(
            gettext_noop("X-Pix-Canary has a stray element %(value)s"),
            value=rest.removeprefix("element "),
        )
    # "tag given twice"
    return Said(gettext_noop("X-Pix-Canary gives %(key)s twice"), key=kind)


# --- clients --------------------------------------------------------------------------------------


class _NoCookies(CookieJar):
    """A jar that keeps nothing, so every probe through one client is a fresh client. It does
    not even parse Set-Cookie (a sampler reads thousands; the cohort cookie is read from the
    headers where it matters)."""

    def extract_cookies(self, response, request):
        pass

    def set_cookie(self, cookie):
        pass


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds: once per process, not once per sample.
    return httpx.create_ssl_context()


def _probing(timeout: float) -> dict:
    """How a probe's client behaves: follows redirects (a loop ends as a failure), keeps no
    cookies."""
    return {
        "timeout": timeout,
        "follow_redirects": True,
        "max_redirects": MAX_REDIRECTS,
        "cookies": _NoCookies(),
        "verify": _tls_context(),
    }


def probe_client(*, timeout: float) -> httpx.Client:
    """A client for probes, one at a time."""
    return httpx.Client(**_probing(timeout))


def async_probe_client(*, timeout: float, max_connections: int) -> httpx.AsyncClient:
    """One connection pool for a whole cohort sample, bounded at ``max_connections``."""
    return httpx.AsyncClient(
        **_probing(timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


# --- the cohort of one fresh client ---------------------------------------------------------------


@dataclass(frozen=True)
class CohortAnswer:
    """What one fresh-client probe showed.

    ``outcome`` is ``native`` or ``proxy`` (a cohort), ``rate_limited`` (a 429, never a cohort)
    or ``failed``; ``reason`` is the edge's reason for a cohort, else what went wrong.
    """

    outcome: str
    reason: str
    retry_after: float | None = None
    tag: str = ""


async def probe_cohort(
    client: httpx.AsyncClient, url: str, *, headers: dict | None, max_seconds: float
) -> CohortAnswer:
    """Ask the edge which cohort a client without a cookie lands in; never raises."""
    try:
        async with asyncio.timeout(max_seconds):
            async with client.stream("GET", url, headers=headers) as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        return CohortAnswer("failed", f"body larger than {MAX_BODY_BYTES} bytes")
    except (TimeoutError, httpx.TimeoutException):
        return CohortAnswer("failed", "timed out")
    except httpx.TooManyRedirects:
        return CohortAnswer("failed", "too many redirects (a redirect loop?)")
    except httpx.HTTPError as exc:
        # The class, not the message: messages carry ports and addresses, and the reasons are
        # counted, so each must read the same every time.
        return CohortAnswer("failed", f"unreachable ({type(exc).__name__})")
    if response.status_code == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return CohortAnswer("rate_limited", "HTTP 429", retry_after)
    if response.status_code != 200:
        return CohortAnswer("failed", f"HTTP {response.status_code}")
    raw_header = response.headers.get("x-pix-canary")
    if not (raw_header or "").strip():
        return CohortAnswer("failed", "no X-Pix-Canary header")
    header = parse_canary_header(raw_header)
    if not header.valid:
        return CohortAnswer("failed", "X-Pix-Canary header does not parse")
    if header.reason in ("cookie", "header"):
        # We sent neither a cookie nor X-Canary: the edge did not treat us as a fresh client.
        return CohortAnswer("failed", f"reason={header.reason} for a client without one")
    return CohortAnswer(header.cohort, header.reason or "none", tag=header.tag or "")
