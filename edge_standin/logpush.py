"""Logpush-shaped traffic: gzip NDJSON files of the ``http_requests`` and ``workers_trace_events``
datasets, as Cloudflare writes them into R2, generated from knobs per cohort.

Pure functions and plain data: the stand-in's traffic loop (``traffic.py``), the tests and the
benchmark all build files with them. Nothing here imports Django or the project's apps.

Layout under a directory (the same keys an R2 bucket would hold)::

    {prefix}http_requests/20251112/20251112T142500Z_20251112T143000Z_1a2b3c4d.log.gz
    {prefix}workers_trace_events/20251112/…
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

TIMESTAMP_FORMATS = ("unixnano", "unix", "rfc3339")
DEFAULT_PREFIX = "b2a/"
COHORTS = ("native", "proxy")
PATHS = ("/api/listings", "/api/listings/search", "/api/uploads", "/api/profile", "/api/qa")
SCRIPT_NAME = "pix-immo-api"


class TrafficError(ValueError):
    """A knob value the generator cannot use."""


@dataclass
class CohortTraffic:
    """How one cohort behaves. Latency is log-normal: ``latency_ms`` is its median."""

    rate_factor: float = 1.0  # multiplies the cohort's share of the traffic (1 = as configured)
    error_rate: float = 0.002  # share of answers that are 5xx
    latency_ms: float = 120.0
    latency_spread: float = 0.5  # sigma of the log-normal; 0 gives a constant latency
    upload_errors_per_minute: float = 0.0  # failed R2 uploads in workers_trace_events

    def update(self, changes: object, where: str) -> None:
        if not isinstance(changes, dict):
            raise TrafficError(f"{where} is an object of cohort knobs")
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise TrafficError(f"unknown knob {where}.{name}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise TrafficError(f"{where}.{name} must be a number ≥ 0")
            if name == "error_rate" and value > 1:
                raise TrafficError(f"{where}.error_rate is a share between 0 and 1")
            setattr(self, name, float(value))


@dataclass
class Traffic:
    """The traffic of one environment's edge."""

    requests_per_minute: float = 60.0
    uploads_per_minute: float = 6.0  # successful uploads, each one trace event
    timestamp_format: str = "unixnano"
    native: CohortTraffic = field(default_factory=lambda: CohortTraffic(latency_ms=140.0))
    proxy: CohortTraffic = field(default_factory=CohortTraffic)

    def update(self, changes: object, where: str) -> None:
        if not isinstance(changes, dict):
            raise TrafficError(f"{where} is an object of traffic knobs")
        for name, value in changes.items():
            if name in COHORTS:
                getattr(self, name).update(value, f"{where}.{name}")
            elif name == "timestamp_format":
                if value not in TIMESTAMP_FORMATS:
                    raise TrafficError(f"{where}.timestamp_format is one of {TIMESTAMP_FORMATS}")
                self.timestamp_format = value
            elif name in ("requests_per_minute", "uploads_per_minute"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise TrafficError(f"{where}.{name} must be a number ≥ 0")
                setattr(self, name, float(value))
            else:
                raise TrafficError(f"unknown knob {where}.{name}")

    def cohort(self, name: str) -> CohortTraffic:
        return self.native if name == "native" else self.proxy

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Routing:
    """What the edge's config makes of a fresh client."""

    percent: int = 0
    tag: str = ""
    emergency_proxy: bool = False

    @property
    def native_share(self) -> float:
        return 0.0 if self.emergency_proxy else self.percent / 100


# --- records -------------------------------------------------------------------------------------


def _count(rng: random.Random, expected: float) -> int:
    """A whole number of events with the expected value ``expected``."""
    whole = math.floor(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _ray_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _client_ip(rng: random.Random) -> str:
    return f"198.51.100.{rng.randrange(1, 255)}"


def http_requests(
    rng: random.Random, start: float, end: float, routing: Routing, traffic: Traffic
) -> list[dict]:
    """Requests between ``start`` and ``end`` (seconds since the epoch), timestamps as floats.

    Each record carries the cohort in ``ResponseHeaders["x-pix-canary"]``, as a Logpush job
    with that custom field captures it.
    """
    minutes = max(0.0, end - start) / 60
    share = routing.native_share
    expected = {
        "native": traffic.requests_per_minute * share * traffic.native.rate_factor * minutes,
        "proxy": traffic.requests_per_minute * (1 - share) * traffic.proxy.rate_factor * minutes,
    }
    reason = "emergency" if routing.emergency_proxy else "sampled"
    records = []
    for cohort in COHORTS:
        knobs = traffic.cohort(cohort)
        header = f"1;tag={routing.tag};cohort={cohort};reason={reason}"
        for _ in range(_count(rng, expected[cohort])):
            began = rng.uniform(start, end)
            ttfb = round(knobs.latency_ms * math.exp(rng.gauss(0.0, knobs.latency_spread)))
            failed = rng.random() < knobs.error_rate
            status = rng.choice((500, 502, 503)) if failed else rng.choice((200, 200, 200, 304))
            records.append(
                {
                    "ClientIP": _client_ip(rng),
                    "ClientRequestHost": "api.pix.immo",
                    "ClientRequestMethod": "GET",
                    "ClientRequestPath": rng.choice(PATHS),
                    "EdgeStartTimestamp": began,
                    "EdgeEndTimestamp": began + ttfb / 1000 + 0.002,
                    "EdgeResponseStatus": status,
                    "OriginResponseStatus": status,
                    "EdgeTimeToFirstByteMs": ttfb,
                    "RayID": _ray_id(rng),
                    "ResponseHeaders": {"x-pix-canary": header},
                }
            )
    records.sort(key=lambda record: record["EdgeStartTimestamp"])
    return records


def trace_events(
    rng: random.Random, start: float, end: float, routing: Routing, traffic: Traffic
) -> list[dict]:
    """Upload invocations of the native handlers; failed ones log and throw an R2 error."""
    minutes = max(0.0, end - start) / 60
    native_active = routing.native_share > 0
    records = []
    uploads = _count(rng, traffic.uploads_per_minute * minutes) if native_active else 0
    failures = _count(rng, traffic.native.upload_errors_per_minute * minutes)
    for failed in [False] * uploads + [True] * failures:
        at = rng.uniform(start, end)
        record = {
            "EventTimestampMs": int(at * 1000),
            "Outcome": "exception" if failed else "ok",
            "ScriptName": SCRIPT_NAME,
            "Logs": [],
            "Exceptions": [],
        }
        if failed:
            message = "R2 upload failed: PUT uploads/" + _ray_id(rng) + " returned 503"
            record["Logs"].append(
                {"Level": "error", "Message": [message], "TimestampMs": int(at * 1000)}
            )
            record["Exceptions"].append(
                {"Name": "Error", "Message": message, "TimestampMs": int(at * 1000)}
            )
        else:
            record["Logs"].append(
                {"Level": "log", "Message": ["upload stored"], "TimestampMs": int(at * 1000)}
            )
        records.append(record)
    records.sort(key=lambda record: record["EventTimestampMs"])
    return records


# --- files ---------------------------------------------------------------------------------------


def format_timestamp(seconds: float, timestamp_format: str) -> int | str:
    if timestamp_format == "unixnano":
        return int(round(seconds * 1e9))
    if timestamp_format == "unix":
        return int(seconds)
    if timestamp_format == "rfc3339":
        return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TrafficError(f"unknown timestamp format {timestamp_format!r}")


def ndjson(records: list[dict], timestamp_format: str = "unixnano") -> bytes:
    """Lines as Logpush writes them, with the request timestamps in the job's format."""
    lines = []
    for record in records:
        if "EdgeStartTimestamp" in record:
            record = {
                **record,
                "EdgeStartTimestamp": format_timestamp(
                    record["EdgeStartTimestamp"], timestamp_format
                ),
                "EdgeEndTimestamp": format_timestamp(record["EdgeEndTimestamp"], timestamp_format),
            }
        lines.append(json.dumps(record, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%SZ")


def object_key(prefix: str, dataset: str, start: float, end: float, rng: random.Random) -> str:
    """A key in Logpush's layout: a ``YYYYMMDD/`` folder per day, the time range in the name."""
    day = datetime.fromtimestamp(start, UTC).strftime("%Y%m%d")
    suffix = f"{rng.getrandbits(32):08x}"
    return f"{prefix}{dataset}/{day}/{_stamp(start)}_{_stamp(end)}_{suffix}.log.gz"


def write_object(directory: Path, key: str, body: bytes) -> Path:
    """Write atomically (temporary name, then rename) so a reader never sees half a file."""
    path = Path(directory) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("." + path.name + ".partial")
    partial.write_bytes(body)
    partial.replace(path)
    return path


@dataclass
class Batch:
    """One pair of files for a time range, and what they hold (the truth for a test)."""

    start: float
    end: float
    http_key: str
    trace_key: str
    http_body: bytes
    trace_body: bytes
    requests: dict = field(default_factory=dict)  # cohort → {"requests", "errors_5xx"}
    upload_errors: int = 0

    def summary(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "http_requests": self.http_key,
            "workers_trace_events": self.trace_key,
            "requests": self.requests,
            "upload_errors": self.upload_errors,
        }


def make_batch(
    rng: random.Random,
    start: float,
    end: float,
    routing: Routing,
    traffic: Traffic,
    prefix: str = DEFAULT_PREFIX,
    earlier: list[tuple[float, Traffic]] = (),
) -> Batch:
    """One pair of files for [start, end). ``earlier``: (until, knobs) that held before
    ``until``, oldest first; ``traffic`` holds after them (a knob turned in the middle of a
    file's time range changes the requests from that moment on, as a real fault would)."""
    requests, events = [], []
    moment = start
    for until, knobs in [*earlier, (end, traffic)]:
        if until <= moment:
            continue
        until = min(until, end)
        requests += http_requests(rng, moment, until, routing, knobs)
        events += trace_events(rng, moment, until, routing, knobs)
        moment = until
    requests.sort(key=lambda record: record["EdgeStartTimestamp"])
    events.sort(key=lambda record: record["EventTimestampMs"])
    truth = {cohort: {"requests": 0, "errors_5xx": 0} for cohort in COHORTS}
    for record in requests:
        cohort = (
            "native" if "cohort=native" in record["ResponseHeaders"]["x-pix-canary"] else "proxy"
        )
        truth[cohort]["requests"] += 1
        truth[cohort]["errors_5xx"] += record["EdgeResponseStatus"] >= 500
    return Batch(
        start=start,
        end=end,
        http_key=object_key(prefix, "http_requests", start, end, rng),
        trace_key=object_key(prefix, "workers_trace_events", start, end, rng),
        http_body=gzipped(ndjson(requests, traffic.timestamp_format)),
        trace_body=gzipped(ndjson(events)),
        requests=truth,
        upload_errors=sum(1 for event in events if event["Outcome"] == "exception"),
    )


def write_batch(directory: Path, batch: Batch) -> None:
    write_object(directory, batch.http_key, batch.http_body)
    write_object(directory, batch.trace_key, batch.trace_body)


# --- the stand-in's knobs ------------------------------------------------------------------------


@dataclass
class LogpushState:
    """Traffic knobs per environment, where files go, and how far the loop has written."""

    envs: list[str]
    directory: str | None = None
    interval: float = 60.0
    prefix: str = DEFAULT_PREFIX
    traffic: dict[str, Traffic] = field(default_factory=dict)
    # Knobs replaced since the files were last written: (until, knobs) per environment.
    earlier: dict[str, list[tuple[float, Traffic]]] = field(default_factory=dict)
    written_until: dict[str, float] = field(default_factory=dict)
    files_written: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Knobs back to their defaults; the directory (a start-up setting) stays."""
        self.traffic = {env: Traffic() for env in self.envs}
        self.earlier = {}

    def env_directory(self, env: str, directory: str | None = None) -> Path | None:
        base = directory or self.directory
        return None if base is None else Path(base) / env

    def apply(self, knobs: object, now: float | None = None) -> None:
        """``{"<env>": {traffic knobs}}``, or traffic knobs for every environment; plus
        ``directory`` and ``interval_seconds``. Validated whole before anything changes."""
        if not isinstance(knobs, dict):
            raise TrafficError("traffic knobs are a JSON object")
        traffic = copy.deepcopy(self.traffic)
        directory, interval = self.directory, self.interval
        shared = {}
        for name, value in knobs.items():
            if name in self.envs:
                traffic[name].update(value, name)
            elif name == "directory":
                directory = None if value in (None, "") else str(value)
            elif name == "interval_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
                    raise TrafficError("interval_seconds must be a number ≥ 1")
                interval = float(value)
            else:
                shared[name] = value
        if shared:
            for env in self.envs:
                traffic[env].update(shared, env)
        for env in self.envs:
            if traffic[env] != self.traffic[env]:
                self.earlier.setdefault(env, []).append((now or time.time(), self.traffic[env]))
        self.traffic, self.directory, self.interval = traffic, directory, interval

    def knobs_since(self, env: str, start: float) -> list[tuple[float, Traffic]]:
        """The knobs replaced after ``start`` (forgetting older ones): for the next files."""
        kept = [(until, knobs) for until, knobs in self.earlier.get(env, []) if until > start]
        self.earlier[env] = kept
        return kept

    def view(self) -> dict:
        return {
            "directory": self.directory,
            "interval_seconds": self.interval,
            "prefix": self.prefix,
            "files_written": self.files_written,
            "traffic": {env: traffic.as_dict() for env, traffic in self.traffic.items()},
        }
