"""State of the stand-in: KV namespaces with their write history, limits, faults, knobs.

Everything runs on one asyncio loop, and no method here awaits, so no locks are needed. It lives
in memory; with a state file (``--state-file``) the KV values and the traffic knobs are also
written there on every change and read back at start, so a restarted demo finds KV as it left it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from .logpush import LogpushState
from .settings import ADJUSTABLE_SETTINGS, Settings

CONFIG_KEY = "config"
HEALTH_COMPONENTS = ("database", "r2_bucket", "proxy_origin")
DEFAULT_COOKIE_ATTRIBUTES = "Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None"
SAME_KEY_WRITE_INTERVAL = 1.0  # seconds; Workers KV refuses faster writes to one key
HISTORY_SHOWN = 10  # writes per namespace listed by /_standin/state
BACKFILL_LIMIT = 24 * 3600  # seconds of Logpush files written at most after a restart
EDGE_LOG_KEPT = 5000  # edge requests kept for /_standin/edge-requests (a long demo sends many)


class KnobError(ValueError):
    """A control API request asked for something the stand-in cannot do."""


@dataclass
class Write:
    value: bytes | None  # None records a deletion
    at: float  # monotonic clock, compared against the propagation delay
    wall: float  # time.time(), for people reading the state
    source: str  # "api", "external" (out-of-band, like wrangler) or "seed"


class Namespace:
    """One KV namespace. Every write is kept, because the edge sees an older one than the API."""

    def __init__(self, namespace_id: str, env: str) -> None:
        self.id = namespace_id
        self.env = env
        self.title = f"{env}-KV_CANARY_CONFIG"
        self.history: dict[str, list[Write]] = {}
        self.last_api_write: dict[str, float] = {}
        self.on_change = lambda: None

    def write(self, key: str, value: bytes | None, source: str, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self.history.setdefault(key, []).append(Write(value, at, time.time(), source))
        self.on_change()

    def current(self, key: str) -> bytes | None:
        """The newest value: what the KV API reads back right after a write."""
        writes = self.history.get(key)
        return writes[-1].value if writes else None

    def visible(self, key: str, delay: float, now: float | None = None) -> bytes | None:
        """What the edge sees: the newest write at least `delay` seconds old, else missing."""
        now = time.monotonic() if now is None else now
        for write in reversed(self.history.get(key, [])):
            if now - write.at >= delay:
                return write.value
        return None

    def clear(self) -> None:
        self.history.clear()
        self.last_api_write.clear()
        self.on_change()

    def saved(self) -> dict:
        """The newest writes of each key, as text, for the state file."""
        return {
            key: [
                {"value": _stored(w.value), "time": w.wall, "source": w.source}
                for w in writes[-HISTORY_SHOWN:]
            ]
            for key, writes in self.history.items()
        }

    def restore(self, saved: dict) -> None:
        """Writes read back from the state file, dated far back: the edge saw them before."""
        for key, writes in saved.items():
            self.history[key] = [
                Write(_loaded(w["value"]), -math.inf, w["time"], w["source"]) for w in writes
            ]


class SlidingWindow:
    """Counts admitted events per client over the last `window` seconds.

    Refused events are not counted, so a client that backs off is admitted again as soon as its
    oldest admitted event leaves the window.
    """

    def __init__(self) -> None:
        self.events: dict[str, deque[float]] = {}

    def admit(self, client: str, limit: int, window: float) -> int | None:
        """None when admitted, else the whole seconds (at least 1) to wait before retrying."""
        if limit <= 0:
            return None
        now = time.monotonic()
        events = self.events.setdefault(client, deque())
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) >= limit:
            return max(1, math.ceil(events[0] + window - now))
        events.append(now)
        return None

    def clear(self) -> None:
        self.events.clear()


@dataclass
class KvFault:
    """A scripted misbehaviour of the KV API for calls matching `method` (and `path` contained)."""

    method: str = "*"
    path: str | None = None
    status: int | None = None
    retry_after: int | None = None
    body: str | None = None
    hang: float = 0.0
    close: bool = False

    @classmethod
    def from_json(cls, data: object) -> KvFault:
        if not isinstance(data, dict):
            raise KnobError("a KV fault is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KnobError(f"unknown KV fault fields: {sorted(unknown)}")
        try:
            fault = cls(
                method=str(data.get("method", "*")).upper(),
                path=None if data.get("path") is None else str(data["path"]),
                status=None if data.get("status") is None else int(data["status"]),
                retry_after=None if data.get("retry_after") is None else int(data["retry_after"]),
                body=None if data.get("body") is None else str(data["body"]),
                hang=float(data.get("hang") or 0.0),
                close=bool(data.get("close", False)),
            )
        except (TypeError, ValueError) as exc:
            raise KnobError(f"bad KV fault {data!r}: {exc}") from exc
        if fault.status is not None and not 100 <= fault.status <= 599:
            raise KnobError(f"bad KV fault status {fault.status}")
        if fault.status is None and not fault.hang and not fault.close:
            raise KnobError("a KV fault needs a status, a hang or close")
        return fault

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and (self.path is None or self.path in path)


@dataclass
class EdgeKnobs:
    """Per-environment behaviour of the edge worker, including breakers for negative tests."""

    health: dict[str, str] = field(default_factory=lambda: dict.fromkeys(HEALTH_COMPONENTS, "ok"))
    latency_ms: int = 0
    ignore_sticky: bool = False
    ignore_header_override: bool = False
    ignore_emergency: bool = False
    cookie_attributes: str = DEFAULT_COOKIE_ATTRIBUTES


EDGE_KNOB_TYPES: dict[str, type] = {
    "latency_ms": int,
    "ignore_sticky": bool,
    "ignore_header_override": bool,
    "ignore_emergency": bool,
    "cookie_attributes": str,
}


def utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def initial_config() -> bytes:
    value = {
        "canary_percent": 0,
        "canary_tag": "B2a",
        "emergency_proxy": False,
        "last_updated": utc_now_text(),
    }
    return json.dumps(value, separators=(",", ":")).encode()


def as_text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def empty_counters(envs: list[str]) -> dict:
    return {
        "edge": {env: {"native": 0, "proxy": 0, "rate_limited": 0} for env in envs},
        "kv_calls": {},
        "kv_rate_limited": 0,
    }


class StandIn:
    """The whole stand-in: settings, namespaces, edges, knobs, logs and counters."""

    def __init__(self, settings: Settings, state_file: Path | None = None) -> None:
        self.settings = settings
        self.state_file = state_file
        self.namespaces = {
            ns_id: Namespace(ns_id, env) for env, ns_id in settings.namespaces.items()
        }
        self.envs = list(settings.namespaces)
        self.edge_knobs = {env: EdgeKnobs() for env in self.envs}
        self.kv_faults: deque[KvFault] = deque()
        self.kv_fault_rule: KvFault | None = None
        self.request_log: list[dict] = []
        # Requests to the edge workers with their headers, the newest EDGE_LOG_KEPT of them.
        self.edge_log: deque[dict] = deque(maxlen=EDGE_LOG_KEPT)
        self.edge_requests_seen = 0
        self.api_limiter = SlidingWindow()
        self.edge_limiter = SlidingWindow()
        self.counters = empty_counters(self.envs)
        self.random = random.Random()
        self.started_at = time.time()
        # Logpush-shaped traffic (edge_standin/traffic.py), knobs under /_standin/traffic.
        self.logpush = LogpushState(self.envs)
        if settings.seed_config:
            self.seed()
        if state_file is not None:
            self.load()
            for namespace in self.namespaces.values():
                namespace.on_change = self.save

    # --- the state file ---------------------------------------------------------------------

    def load(self) -> None:
        """Read KV and the traffic knobs back; a missing file is a first start."""
        try:
            saved = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return
        for namespace_id, keys in saved.get("namespaces", {}).items():
            if namespace_id in self.namespaces:
                self.namespaces[namespace_id].restore(keys)
        for env, traffic in saved.get("traffic", {}).items():
            if env in self.envs:
                self.logpush.traffic[env].update(traffic, env)
        # The real edge serves while the dashboard is stopped: the Logpush loop goes on from where
        # it stopped (at most a day back), so a window across the restart has its traffic.
        oldest = time.time() - BACKFILL_LIMIT
        for env, until in saved.get("logpush_written_until", {}).items():
            if env in self.envs:
                self.logpush.written_until[env] = max(until, oldest)

    def save(self) -> None:
        """Write the state file whole, then rename it into place: never half a file."""
        if self.state_file is None:
            return
        saved = {
            "saved_at": time.time(),
            "namespaces": {ns.id: ns.saved() for ns in self.namespaces.values()},
            "traffic": {env: traffic.as_dict() for env, traffic in self.logpush.traffic.items()},
            "logpush_written_until": self.logpush.written_until,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".tmp")
        partial.write_text(json.dumps(saved, indent=1))
        os.replace(partial, self.state_file)

    # --- namespaces -------------------------------------------------------------------------

    def seed(self) -> None:
        """Write the initial config, dated far back so the edge sees it from the first request."""
        for namespace in self.namespaces.values():
            namespace.write(CONFIG_KEY, initial_config(), "seed", at=-math.inf)

    def namespace_for_env(self, env: str) -> Namespace:
        return self.namespaces[self.settings.namespaces[env]]

    def find_namespace(self, id_or_env: str) -> Namespace | None:
        if id_or_env in self.namespaces:
            return self.namespaces[id_or_env]
        if id_or_env in self.settings.namespaces:
            return self.namespace_for_env(id_or_env)
        return None

    def edge_config(self, env: str) -> bytes | None:
        namespace = self.namespace_for_env(env)
        return namespace.visible(CONFIG_KEY, self.settings.propagation_delay)

    # --- edge bookkeeping -------------------------------------------------------------------

    def log_edge_request(self, env: str, method: str, path: str, headers: dict) -> dict:
        """Record a request to an edge worker as it arrives; the status is filled in later."""
        entry = {
            "index": self.edge_requests_seen,
            "env": env,
            "method": method,
            "path": path,
            "headers": headers,
            "status": None,
            "time": time.time(),
        }
        self.edge_requests_seen += 1
        self.edge_log.append(entry)
        return entry

    def edge_requests(self, since: int) -> list[dict]:
        return [entry for entry in self.edge_log if entry["index"] >= since]

    # --- KV API bookkeeping -----------------------------------------------------------------

    def log_api_call(self, method: str, path: str, body: bytes | None) -> dict:
        """Record a call as it arrives; the caller fills in the status when it answers."""
        entry = {
            "index": len(self.request_log),
            "method": method,
            "path": path,
            "status": None,
            "time": time.time(),
        }
        if method == "PUT":
            entry["body"] = as_text(body or b"")
        self.request_log.append(entry)
        calls = self.counters["kv_calls"]
        calls[method] = calls.get(method, 0) + 1
        return entry

    def finish_api_call(self, entry: dict, status: int | None, note: str | None = None) -> None:
        entry["status"] = status
        entry["finished"] = time.time()
        if note:
            entry["fault"] = note
        if status == 429:
            self.counters["kv_rate_limited"] += 1

    def take_kv_fault(self, method: str, path: str) -> KvFault | None:
        """The first queued fault matching this call (consumed), else the persistent rule."""
        for fault in self.kv_faults:
            if fault.matches(method, path):
                self.kv_faults.remove(fault)
                return fault
        if self.kv_fault_rule and self.kv_fault_rule.matches(method, path):
            return self.kv_fault_rule
        return None

    # --- knobs ------------------------------------------------------------------------------

    def apply_knobs(self, knobs: dict) -> None:
        """Validate every knob first, then change them all, so a bad request changes nothing."""
        if not isinstance(knobs, dict):
            raise KnobError("knobs are a JSON object")
        settings_changes: dict = {}
        edge_knobs = copy.deepcopy(self.edge_knobs)
        faults = self.kv_faults
        fault_rule = self.kv_fault_rule
        for name, value in knobs.items():
            if name in ADJUSTABLE_SETTINGS:
                settings_changes[name] = self._setting_value(name, value)
            elif name == "health":
                self._apply_health(edge_knobs, value)
            elif name in EDGE_KNOB_TYPES:
                for env, env_value in self._per_env(name, value).items():
                    setattr(edge_knobs[env], name, _typed(name, env_value, EDGE_KNOB_TYPES[name]))
            elif name == "kv_faults":
                if not isinstance(value, list):
                    raise KnobError("kv_faults is a list of faults")
                faults = deque(KvFault.from_json(item) for item in value)
            elif name == "kv_fault_rule":
                fault_rule = None if value is None else KvFault.from_json(value)
            else:
                raise KnobError(f"unknown knob {name!r}")
        self.settings = replace(self.settings, **settings_changes)
        self.edge_knobs = edge_knobs
        self.kv_faults = faults
        self.kv_fault_rule = fault_rule

    def _setting_value(self, name: str, value: object) -> object:
        if name == "exempt_token":
            return None if value in (None, "") else str(value)
        number = _typed(name, value, ADJUSTABLE_SETTINGS[name])
        if number < 0:
            raise KnobError(f"{name} cannot be negative")
        return number

    def _per_env(self, name: str, value: object) -> dict:
        """A per-environment knob takes {env: value}, or one plain value for every environment."""
        if not isinstance(value, dict):
            return dict.fromkeys(self.envs, value)
        unknown = set(value) - set(self.envs)
        if unknown:
            raise KnobError(f"{name}: unknown environments {sorted(unknown)}")
        return value

    def _apply_health(self, edge_knobs: dict[str, EdgeKnobs], value: object) -> None:
        if not isinstance(value, dict):
            raise KnobError('health is {"<env>": {"<component>": "error: <text>" | "ok"}}')
        for env, components in self._per_env("health", value).items():
            if not isinstance(components, dict):
                raise KnobError(f"health.{env} is an object of components")
            for component, text in components.items():
                if component not in HEALTH_COMPONENTS:
                    raise KnobError(f"unknown health component {component!r}")
                edge_knobs[env].health[component] = _health_text(text)

    def knob_view(self) -> dict:
        return {
            "settings": self.settings.as_dict(),
            "edges": {env: asdict(knobs) for env, knobs in self.edge_knobs.items()},
            "kv_faults": [asdict(fault) for fault in self.kv_faults],
            "kv_fault_rule": asdict(self.kv_fault_rule) if self.kv_fault_rule else None,
        }

    # --- reset and state --------------------------------------------------------------------

    def reset(self, values: bool = False) -> None:
        """Forget logs, faults, counters, limiter buckets and per-edge knobs; keep the settings.

        With values=True the namespaces also go back to their start (seeded or empty).
        """
        self.request_log.clear()
        self.edge_log.clear()
        self.edge_requests_seen = 0
        self.kv_faults.clear()
        self.kv_fault_rule = None
        self.api_limiter.clear()
        self.edge_limiter.clear()
        self.counters = empty_counters(self.envs)
        self.edge_knobs = {env: EdgeKnobs() for env in self.envs}
        self.logpush.reset()
        if values:
            for namespace in self.namespaces.values():
                namespace.clear()
            if self.settings.seed_config:
                self.seed()
        self.save()

    def snapshot(self) -> dict:
        delay = self.settings.propagation_delay
        namespaces = {}
        for namespace in self.namespaces.values():
            writes = namespace.history.get(CONFIG_KEY, [])
            namespaces[namespace.id] = {
                "env": namespace.env,
                "title": namespace.title,
                "current": as_text(namespace.current(CONFIG_KEY)),
                "visible": as_text(namespace.visible(CONFIG_KEY, delay)),
                "keys": sorted(k for k in namespace.history if namespace.current(k) is not None),
                "config_writes": [
                    {"source": w.source, "time": w.wall, "value": as_text(w.value)}
                    for w in writes[-HISTORY_SHOWN:]
                ],
            }
        return {
            **self.knob_view(),
            "namespaces": namespaces,
            "counters": self.counters,
            "requests_logged": len(self.request_log),
            "started_at": self.started_at,
        }


def _stored(value: bytes | None) -> str | None:
    # surrogateescape keeps bytes that are not UTF-8 through the JSON round trip
    return None if value is None else value.decode("utf-8", errors="surrogateescape")


def _loaded(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", errors="surrogateescape")


def _typed(name: str, value: object, kind: type) -> object:
    if kind is bool:
        if not isinstance(value, bool):
            raise KnobError(f"{name} must be true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise KnobError(f"{name} must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KnobError(f"{name} must be a number")
    if kind is int and value != int(value):
        raise KnobError(f"{name} must be a whole number")
    return kind(value)


def _health_text(text: object) -> str:
    """The text "ok" (or null) clears a component; any other becomes "error: <text>"."""
    if text is None or text == "ok":
        return "ok"
    text = str(text)
    return text if text.startswith("error:") else f"error: {text}"
