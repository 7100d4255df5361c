"""What on an environment needs a person now, for the overview: drift, a pending increase, a
decision or check-in due, a new Worker build inside a phase window, a firing alert, a failing
health check, a change stuck before "in effect". Nothing when all is well.

Rollout knows its own concepts (changes, requests, windows, check-ins) but never imports
monitoring or metrics (docs/architecture.md). Those apps hand over a *source* from their
``AppConfig.ready()`` with ``look_with``; the overview asks every source once for all
environments, so the page costs the same number of queries for one environment or fifty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from ..models import Environment, PhaseRun


@dataclass(frozen=True)
class Attention:
    """One thing that needs a person. ``level`` is "error" or "warn"; ``since`` is shown as a
    time when given; ``url`` is where the person acts on it."""

    kind: str
    text: str
    url: str = ""
    level: str = "warn"
    since: datetime | None = None


# A source: given the environments and the moment, what needs a person, by environment id. It
# asks the database once for all of them.
Source = Callable[[list[Environment], datetime], dict[int, list[Attention]]]

_sources: dict[str, Source] = {}


def look_with(name: str, source: Source) -> None:
    """Add an app's source (called from its ``AppConfig.ready()``; named, so twice is once)."""
    _sources[name] = source


def needs(environments: list[Environment], now: datetime) -> dict[int, list[Attention]]:
    """What needs a person, by environment id, from rollout's own rows (``open_changes``,
    ``active_rollouts`` with their ``open_runs``, ``open_check_ins`` and
    ``open_build_changes``, prefetched by the caller) and every source handed over."""
    found: dict[int, list[Attention]] = defaultdict(list)
    for environment in environments:
        found[environment.pk].extend(_stuck_changes(environment, now))
        for rollout in environment.active_rollouts:
            for run in rollout.open_runs:
                found[environment.pk].extend(_phase_window(run, now))
    for source in _sources.values():
        for environment_id, items in source(environments, now).items():
            found[environment_id].extend(items)
    return found


def _stuck_changes(environment: Environment, now: datetime) -> list[Attention]:
    allowance = timedelta(seconds=settings.PROPAGATION_ALLOWANCE_SECONDS)
    return [
        Attention(
            kind="stuck",
            text=_("Version %(version)s (%(kind)s, %(settings)s) is not in effect yet: %(state)s")
            % {
                "version": change.version,
                "kind": change.get_kind_display(),
                "settings": change.settings.describe(),
                "state": change.get_state_display(),
            }
            + (f" — {change.last_error[:200]}" if change.last_error else ""),
            url=reverse("rollout:environment", args=[environment.public_id]),
            level="error",
            since=change.requested_at,
        )
        for change in environment.open_changes
        if change.requested_at < now - allowance
    ]


def _phase_window(run: PhaseRun, now: datetime) -> list[Attention]:
    url = reverse("rollout:phase_run", args=[run.public_id])
    builds = [
        Attention(
            kind="build_change",
            text=_(
                "%(run)s: a new Worker build went live during the window "
                "(%(old_build)s → %(new_build)s): restart the window or keep it"
            )
            % {"run": run, "old_build": change.old_build, "new_build": change.new_build},
            url=url,
            level="error",
            since=change.changed_at,
        )
        for change in run.open_build_changes
    ]
    return builds + _decision_or_check_ins(run, now, url)


def _decision_or_check_ins(run: PhaseRun, now: datetime, url: str) -> list[Attention]:
    if run.state == PhaseRun.State.DECISION_DUE:
        return [
            Attention(
                kind="decision",
                text=_("%(run)s: the GO / NO-GO decision is due") % {"run": run},
                url=url,
                since=run.window_ends_at,
            )
        ]
    items = []
    for check_in in run.open_check_ins:
        status = check_in.status(now)
        if status == "due":
            text = _("Check-in %(label)s is due: %(purpose)s") % {
                "label": check_in.label_words,
                "purpose": _(check_in.purpose),
            }
        elif status == "missed":
            text = _("Check-in %(label)s was missed: acknowledge it late") % {
                "label": check_in.label_words
            }
        else:
            continue
        items.append(Attention(kind="check_in", text=text, url=url, since=check_in.due_at))
    return items
