"""The edge worker's public face: the ``X-Pix-Canary`` header and ``GET /api/qa``.

``X-Pix-Canary: 1;tag=B2a;cohort=native;reason=sampled``. Parsed tolerantly (any order, spaces,
unknown keys), with what was odd reported in ``problems`` instead of raised.
"""

import json
import time
from dataclasses import dataclass, field

import httpx

COHORTS = ("native", "proxy")
REASONS = ("sampled", "cookie", "header", "emergency")
COHORT_COOKIE = "_canary_cohort"
MAX_BODY_BYTES = 64 * 1024


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
        }


def probe_qa(
    url: str, *, client: httpx.Client, headers: dict | None = None, cookies: dict | None = None
) -> EdgeReport:
    """One request to ``/api/qa`` (fresh client unless cookies are given); never raises."""
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
                    report.error = f"body larger than {MAX_BODY_BYTES} bytes"
                    break
    except httpx.TimeoutException:
        report.error = "timed out"
        return report
    except httpx.TooManyRedirects:
        report.error = "too many redirects"
        return report
    except httpx.HTTPError as exc:
        report.error = f"unreachable: {exc}"
        return report
    report.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    report.status_code = response.status_code
    if response.status_code == 429:
        try:
            report.retry_after = float(response.headers.get("retry-after", ""))
        except ValueError:
            report.retry_after = None
        report.error = report.error or "rate limited (429)"
        return report
    report.header = parse_canary_header(response.headers.get("x-pix-canary"))
    report.cookie_set = response.headers.get("set-cookie")
    if report.error:
        return report
    if response.status_code != 200:
        report.error = f"HTTP {response.status_code}"
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        report.error = report.error or "body is not JSON"
        return report
    if not isinstance(parsed, dict):
        report.error = report.error or "body is JSON but not an object"
        return report
    report.body = parsed
    return report
