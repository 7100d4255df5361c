"""The edge of one environment as our own code reaches it: one set of request headers and one
request budget against the edge worker's rate limit.

The worker answers the 11th request from one client inside its window with 429, and all our
processes are one client to it. So every request we send to an environment's edge takes a turn
from a budget shared by all workers first: the scheduled observation and the "in effect"
confirmation may use the whole budget, the cohort sampler only what is left after
``EDGE_REQUEST_BUDGET_RESERVED`` turns, so a sample never makes an observation see a 429 from our
own traffic.

The budget is a sliding window kept in Redis (one sorted set per environment, changed by one Lua
script, so two workers can never both take the last turn; Redis's clock decides, so the workers'
clocks need not agree). Without Redis (the embedded mode) each process keeps its own window,
which holds as long as one worker process sends the requests; the embedded mode runs one.
"""

import logging
import threading
import time
import uuid
from collections import defaultdict, deque

import redis
from django.conf import settings
from django.utils.translation import gettext_noop

from .edge_qa import EdgeReport, probe_client, probe_qa
from .said import Said

log = logging.getLogger(__name__)

RESERVED = "reserved"  # the observation and the "in effect" confirmation
SAMPLER = "sampler"  # the cohort sampler: only what the reserved share leaves
BUDGET_SPENT = Said(gettext_noop("not probed: no turn left in the edge request budget"))

# KEYS[1]: the environment's window. ARGV: window (ms), turns allowed to this caller, a unique id.
# Returns 0 when a turn was taken, else the milliseconds until one may be free.
_TAKE_TURN = """
local key, window, allowed, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used < allowed then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 0
end
local freeing = redis.call('ZRANGE', key, used - allowed, used - allowed, 'WITHSCORES')
return math.max(1, tonumber(freeing[2]) + window - now)
"""


def probe_headers(environment) -> dict:
    """Extra request headers for this environment's edge (e.g. a monitoring token the worker
    exempts from its rate limit): the global ones, then the environment's own over them.

    They are secrets: they go on the wire and nowhere else (not into rows, pages or logs).
    """
    key = f"{environment.service.name}/{environment.name}"
    return {
        **settings.EDGE_PROBE_HEADERS,
        **settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT.get(key, {}),
    }


class RedisBudget:
    """The sliding window of every worker, in Redis."""

    def __init__(self, url: str, *, turns: int, window: float, reserved: int):
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.redis.register_script(_TAKE_TURN)
        self.turns, self.window, self.reserved = turns, window, reserved

    def take(self, environment_id: int, share: str) -> float:
        """0 when a turn was taken, else the seconds until one may be free."""
        wait_ms = self.script(
            keys=[f"rollout:edge-budget:{environment_id}"],
            args=[int(self.window * 1000), _allowed(self, share), uuid.uuid4().hex],
        )
        return int(wait_ms) / 1000


class ProcessBudget:
    """The same window kept in this process only: the fallback without Redis."""

    def __init__(self, *, turns: int, window: float, reserved: int):
        self.turns, self.window, self.reserved = turns, window, reserved
        self._taken = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, environment_id: int, share: str) -> float:
        with self._lock:
            now = time.monotonic()
            taken = self._taken[environment_id]
            while taken and taken[0] <= now - self.window:
                taken.popleft()
            allowed = _allowed(self, share)
            if len(taken) < allowed:
                taken.append(now)
                return 0.0
            return max(0.001, taken[len(taken) - allowed] + self.window - now)


def _allowed(budget, share: str) -> int:
    return budget.turns if share == RESERVED else max(0, budget.turns - budget.reserved)


_budgets: dict = {}
_budgets_lock = threading.Lock()


def budget():
    """This process's handle on the shared budget; None when the budget is off."""
    turns = settings.EDGE_REQUEST_BUDGET
    if turns <= 0:
        return None
    key = (
        settings.EDGE_BUDGET_REDIS_URL,
        turns,
        settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS,
        settings.EDGE_REQUEST_BUDGET_RESERVED,
    )
    with _budgets_lock:
        if key not in _budgets:
            url, turns, window, reserved = key
            if url:
                _budgets[key] = RedisBudget(url, turns=turns, window=window, reserved=reserved)
            else:
                _budgets[key] = ProcessBudget(turns=turns, window=window, reserved=reserved)
        return _budgets[key]


def take_turn(environment_id: int, share: str) -> float:
    """Take one request's turn from the environment's budget: 0 when taken (or the budget is
    off), else the seconds to wait before asking again. If Redis cannot be reached, this
    process's own window decides, so that monitoring goes on (logged)."""
    shared = budget()
    if shared is None:
        return 0.0
    try:
        return shared.take(environment_id, share)
    except redis.RedisError as exc:
        log.warning("edge budget in Redis unreachable, this process's window decides: %s", exc)
        return _fallback(shared).take(environment_id, share)


def _fallback(shared) -> ProcessBudget:
    key = ("fallback", shared.turns, shared.window, shared.reserved)
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = ProcessBudget(
                turns=shared.turns, window=shared.window, reserved=shared.reserved
            )
        return _budgets[key]


def sampler_seconds(probes: int) -> float | None:
    """About how long ``probes`` requests of the sampler take at the budget's pace (None when the
    budget is off: then only the edge's own answers pace it)."""
    turns = settings.EDGE_REQUEST_BUDGET
    if turns <= 0:
        return None
    allowed = max(1, turns - settings.EDGE_REQUEST_BUDGET_RESERVED)
    return probes / allowed * settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS


def wait_for_turn(environment_id: int, share: str, *, max_wait: float) -> bool:
    """Take a turn, sleeping while the budget is spent; False when none came within max_wait."""
    deadline = time.monotonic() + max_wait
    while (wait := take_turn(environment_id, share)) > 0:
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
    return True


def read_qa(
    environment, *, max_wait: float | None = None, cookies: dict | None = None
) -> EdgeReport:
    """One request to the environment's ``/api/qa`` with its probe headers, within its budget.

    Waits up to ``max_wait`` seconds (default: one budget window) for a turn; a report with
    ``budget_spent`` set, and no request sent, when none came. ``cookies`` are sent as a client
    that holds them (the stickiness probe); without them the probe is a fresh client.
    """
    if max_wait is None:
        max_wait = settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS
    if not wait_for_turn(environment.pk, RESERVED, max_wait=max_wait):
        return EdgeReport(url=environment.qa_url, error=BUDGET_SPENT)
    timeout = settings.HTTP_TIMEOUT_SECONDS
    with probe_client(timeout=timeout) as client:
        return probe_qa(
            environment.qa_url,
            client=client,
            headers=probe_headers(environment),
            cookies=cookies,
            max_seconds=2 * timeout,
        )


def is_rate_limited(report: EdgeReport) -> bool:
    """A 429 from the edge, or our own budget holding the request back: not the edge failing."""
    return report.status_code == 429 or report.error == BUDGET_SPENT
