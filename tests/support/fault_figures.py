"""What became of the config changes in a fault case, counted from the database and from the KV
API's own log of the writes it accepted, and one report line per case for bench/fault_suite.py.

    figures = change_figures(edge, environment.kv_namespace_id, recorded_changes(environment),
                             requested=5)
    report("Redis stopped while people click", figures)
"""

import json
import os
from collections import Counter

from rollout.models import ConfigChange
from tests.conftest import wait_for

APPLIED = ("written", "in_effect")
LOST = ("requested", "applying", "failed")


def recorded_changes(environment, *, after_version: int = 0) -> list[tuple[str, dict]]:
    """(state, settings) of each change of the environment newer than ``after_version``."""
    changes = ConfigChange.objects.filter(environment=environment, version__gt=after_version)
    return list(changes.order_by("version").values_list("state", "after"))


def accepted_writes(edge, namespace_id: str, *, since: int = 0) -> list[tuple]:
    """The owned settings of every config PUT the KV API answered 200, from log index ``since``.

    A write the client gave up on is still served later (as Cloudflare may apply a write whose
    answer was lost), so calls still in flight are waited for: a late duplicate counts.
    """
    path = f"/namespaces/{namespace_id}/values/config"

    def config_puts():
        return [r for r in edge.requests("PUT", since=since) if r["path"].endswith(path)]

    wait_for(
        lambda: all(r["status"] is not None or r.get("fault") for r in config_puts()),
        timeout=15,
        message="the KV API to answer the writes in flight",
    )
    return [_owned(json.loads(r["body"])) for r in config_puts() if r["status"] == 200]


def change_figures(
    edge, namespace_id: str, changes: list[tuple[str, dict]], *, requested: int, since: int = 0
) -> dict:
    """Requested, applied exactly once, lost and duplicated, for the changes of one case.

    ``changes`` are (state, settings) of the changes the case made. A change is applied exactly
    once when it reached KV (written or in effect) and the API accepted its settings once; it is
    lost when left requested, applying or failed. A superseded change is neither: a newer
    version replaced it before it took effect, as it should.
    """
    writes = Counter(accepted_writes(edge, namespace_id, since=since))
    return {
        "requested": requested,
        "recorded": len(changes),
        "applied exactly once": sum(
            state in APPLIED and writes[_owned(settings)] == 1 for state, settings in changes
        ),
        "superseded": sum(state == "superseded" for state, _ in changes),
        "lost": sum(state in LOST for state, _ in changes),
        "duplicated writes": writes.total() - len(writes),
    }


def report(case: str, figures: dict) -> None:
    """Print a case's figures; with FAULT_FIGURES_FILE set, also append them there as JSON."""
    print(f"fault figures, {case}:", figures)
    path = os.environ.get("FAULT_FIGURES_FILE")
    if path:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        with open(path, "a") as lines:
            lines.write(json.dumps({"case": case, "test": test, "figures": figures}) + "\n")


def _owned(value: dict) -> tuple:
    return (value["canary_percent"], value["canary_tag"], value["emergency_proxy"])
