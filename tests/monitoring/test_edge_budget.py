"""The per-environment edge request budget: shared through the suite's own Redis by separate
processes, it never lets them together past the edge's rate limit; without Redis each process
keeps its own window. The edge stand-in is the judge: it answers 429 past its limit."""

import json
import subprocess
import sys
import textwrap

import pytest

from integrations import edge as edge_budget
from tests.support.edge import ROOT

# Each process sends this many requests to the preview edge, each after taking a turn.
REQUESTS_PER_PROCESS = 12
SENDER = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    from integrations.edge import RESERVED, RedisBudget

    redis_url, qa_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    budget = RedisBudget(redis_url, turns=5, window=1.2, reserved=1)
    statuses = []
    with httpx.Client(timeout=5) as client:
        for _ in range(count):
            while (wait := budget.take(4242, RESERVED)) > 0:
                time.sleep(wait)
            statuses.append(client.get(qa_url).status_code)
    print(json.dumps(statuses))
    """
)


def test_two_processes_sharing_the_budget_never_exceed_the_edges_limit(edge, broker_url):
    edge.knobs(rate_limit=5, rate_window=1.0)
    command = [sys.executable, "-c", SENDER, broker_url, edge.qa_url("preview")]
    senders = [
        subprocess.Popen(
            [*command, str(REQUESTS_PER_PROCESS)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    statuses = [json.loads(sender.communicate(timeout=60)[0]) for sender in senders]

    assert statuses == [[200] * REQUESTS_PER_PROCESS] * 2
    assert edge.state()["counters"]["edge"]["preview"]["rate_limited"] == 0
    assert len(edge.edge_requests("preview")) == 2 * REQUESTS_PER_PROCESS


@pytest.mark.parametrize("where", ["redis", "process"])
def test_the_sampler_leaves_the_reserve_to_the_observation(where, broker_url, settings):
    settings.EDGE_REQUEST_BUDGET = 5
    settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS = 60
    settings.EDGE_REQUEST_BUDGET_RESERVED = 2
    settings.EDGE_BUDGET_REDIS_URL = broker_url if where == "redis" else ""
    kind = edge_budget.RedisBudget if where == "redis" else edge_budget.ProcessBudget
    assert isinstance(edge_budget.budget(), kind)

    sampler_turns = [edge_budget.take_turn(7, edge_budget.SAMPLER) for _ in range(4)]
    assert sampler_turns[:3] == [0, 0, 0] and sampler_turns[3] > 0
    assert [edge_budget.take_turn(7, edge_budget.RESERVED) for _ in range(2)] == [0, 0]
    assert edge_budget.take_turn(7, edge_budget.RESERVED) > 0
    assert edge_budget.take_turn(8, edge_budget.SAMPLER) == 0  # another environment's budget


def test_no_budget_takes_nothing(settings):
    settings.EDGE_REQUEST_BUDGET = 0
    assert edge_budget.budget() is None
    assert [edge_budget.take_turn(7, edge_budget.SAMPLER) for _ in range(50)] == [0] * 50
