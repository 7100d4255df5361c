"""The evidence of one phase window, as the signers see it and as the decision freezes it.

Everything comes from recorded facts: the minute buckets of the metrics pipeline, the config
changes (emergency stops, rollbacks), the alert events, and the people's attestations. The
evidence is a plain JSON document; its SHA-256 over a canonical serialisation is the digest a
signature is bound to, so "the same evidence" is a byte-for-byte comparison.

The figures come from the metrics app, which builds on rollout (its alert rules press rollout's
emergency stop) and so may not be imported from here: rollout states what it needs as
``Measurements`` and ``MetricsConfig.ready()`` hands over ``metrics/evidence.py`` with
``measure_with``. Every import between the two apps points from metrics to rollout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max
from django.utils.translation import gettext_noop

from ..models import ConfigChange, PhaseRun
from ..team_language import for_the_record
from . import evidence_words, preview_words
from .phases import build_of
from .preview_words import label, said
from .recommendation import (
    Attestation,
    BuildShift,
    Incident,
    Recommendation,
    Thresholds,
    Window,
    recommend,
)

if TYPE_CHECKING:  # the type only: the figures are made by metrics, handed over at run time
    from metrics.figures import Figures

HOUR = timedelta(hours=1)
INCIDENT_KINDS = {
    ConfigChange.Kind.EMERGENCY_STOP: "emergency_stop",
    ConfigChange.Kind.ROLLBACK: "rollback",
}


class Measurements(Protocol):
    """What the evidence reads from the metrics pipeline for one environment."""

    def window(
        self, environment_id: int, start: datetime, end: datetime, step: timedelta
    ) -> tuple[Figures, list[Figures], list[datetime]]:
        """Figures over [start, end), the same cut into steps, the minutes with any log."""

    def critical_alerts(
        self, environment_id: int, start: datetime, end: datetime
    ) -> list[Incident]:
        """The critical alert rules that fired in [start, end)."""

    def newest_log_at(self, environment_id: int) -> datetime | None: ...

    def fingerprint(self, environment_id: int, start: datetime, end: datetime) -> list:
        """Aggregates that move whenever the window's figures or alerts do."""


_measurements: Measurements | None = None


def measure_with(measurements: Measurements) -> None:
    """Called once by ``MetricsConfig.ready()``."""
    global _measurements
    _measurements = measurements


def measurements() -> Measurements:
    if _measurements is None:
        raise ImproperlyConfigured("a decision's evidence needs the metrics app installed")
    return _measurements


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@dataclass
class Evidence:
    document: dict
    digest: str
    recommendation: Recommendation
    window: Window

    @property
    def outcome(self) -> str:
        return self.recommendation.outcome


def thresholds_for(run: PhaseRun) -> Thresholds:
    """The matrix in force: the defaults with the plan's overrides (validated when saved)."""
    return Thresholds.from_overrides(run.rollout.plan.decision_thresholds)


def window_bounds(run: PhaseRun, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in whole minutes: from the minute the config took effect to the window's end,
    or to now while the window still runs (an early NO-GO)."""
    start = floor_minute(run.in_effect_at)
    end = floor_minute(min(now, run.window_ends_at))
    return start, max(start, end)


def figures_of(run: PhaseRun, now: datetime) -> Figures:
    """The figures of a phase window: [in effect, window end or now) in whole minutes, from the
    metrics buckets. Every place that shows a phase's figures (the metrics panel's "phase"
    window, its JSON and Prometheus outputs, the phase page, the reports) reads them here, so
    the same phase never shows two different counts."""
    return _measured(run, now)[2]


def _measured(run: PhaseRun, now: datetime):
    start, end = window_bounds(run, now)
    figures, hourly, logged = measurements().window(run.rollout.environment_id, start, end, HOUR)
    return start, end, figures, hourly, logged


def gather(run: PhaseRun, now: datetime) -> Window:
    start, end, figures, hourly, logged = _measured(run, now)
    return Window(
        start=start,
        end=end,
        figures=figures,
        hourly=hourly,
        log_gaps=log_gaps(logged, start, end),
        incidents=incidents(run, start, end),
        attestations=attestations(run),
        build_changes=build_changes(run),
    )


def logs_received_through(environment_id: int, end: datetime) -> datetime | None:
    """How far the environment's logs have arrived, up to the window's end. Logpush delivers a
    file every few minutes, so right after a window ends its last minutes may still be on their
    way: until a line from the end or later has been ingested, the figures can still change."""
    newest = measurements().newest_log_at(environment_id)
    return None if newest is None else min(newest, end)


def log_gaps(minutes: list[datetime], start: datetime, end: datetime):
    """Stretches longer than a minute with no log line at all, including at both ends."""
    gaps = []
    previous = start - timedelta(minutes=1)
    for minute in [*minutes, end]:
        if minute - previous > timedelta(minutes=1):
            gaps.append((previous + timedelta(minutes=1), minute))
        previous = minute
    return gaps


def incidents(run: PhaseRun, start: datetime, end: datetime) -> list[Incident]:
    """Emergency stops and rollbacks recorded for the environment, and critical alerts that
    fired, from the moment the phase took effect to the window's end."""
    environment_id = run.rollout.environment_id
    found = []
    changes = ConfigChange.objects.filter(
        environment_id=environment_id,
        kind__in=list(INCIDENT_KINDS),
        requested_at__gte=run.in_effect_at,
        requested_at__lt=end,
    ).order_by("requested_at", "id")
    for change in changes:
        summary = said(
            gettext_noop("%(kind)s by %(by)s: %(reason)s"),
            kind=label(ConfigChange.Kind(change.kind)),
            by=change.actor_label,
            reason=change.reason,
        )
        found.append(
            Incident(
                kind=INCIDENT_KINDS[change.kind],
                at=change.requested_at,
                summary=preview_words.record(summary),
                said=summary,
            )
        )
    found.extend(measurements().critical_alerts(environment_id, start, end))
    return found


def stickiness(run: PhaseRun, end: datetime) -> list[dict]:
    """What the edge did with a native cookie after each change of the phase that lowered the
    native share (rollout/services/stickiness.py): the cookie holders stayed, or moved."""
    changes = ConfigChange.objects.filter(
        environment_id=run.rollout.environment_id,
        requested_at__gte=run.in_effect_at,
        requested_at__lt=end,
        sticky_probe_at__isnull=False,
    ).order_by("requested_at", "id")
    return [
        {
            "version": change.version,
            "change": change.get_kind_display(),
            "at": change.sticky_probe_at.isoformat(),
            "result": change.get_sticky_probe_result_display(),
            "detail": change.sticky_probe_detail,
        }
        for change in changes
    ]


def build_changes(run: PhaseRun) -> list[BuildShift]:
    """New Worker builds that went live inside the window (rollout/services/deployments.py),
    with the choice a person made for each."""
    return [
        BuildShift(
            at=change.changed_at,
            old=change.before.describe(full=True) if change.before else "unknown",
            new=change.after.describe(full=True),
            resolution=change.resolution,
            by=change.resolved_by.get_username() if change.resolved_by else "",
            reason=change.reason,
        )
        for change in run.build_changes.select_related("before", "after", "resolved_by")
    ]


def attestations(run: PhaseRun) -> dict[str, Attestation]:
    newest = {}
    for given in run.attestations.select_related("given_by").order_by("-given_at", "-id"):
        newest.setdefault(
            given.kind,
            Attestation(
                kind=given.kind,
                value=given.value,
                by=given.given_by.get_username(),
                at=given.given_at,
                note=given.note,
            ),
        )
    return newest


def build(run: PhaseRun, now: datetime) -> Evidence:
    """The evidence as of ``now``; its words in English and UTC whoever builds it, so that the
    digest never depends on a reader (evidence_words.py)."""
    return for_the_record(_build, run, now)


def _build(run: PhaseRun, now: datetime) -> Evidence:
    window = gather(run, now)
    logs_through = logs_received_through(run.rollout.environment_id, window.end)
    thresholds = thresholds_for(run)
    recommendation = recommend(window, thresholds)
    document = {
        "phase": {
            "tag": run.phase.tag,
            "percent": run.phase.percent,
            "window_number": run.window_number,
            "minimum_hours": run.phase.min_observation.total_seconds() / 3600,
            "in_effect_at": run.in_effect_at.isoformat(),
            "window_ends_at": run.window_ends_at.isoformat(),
            "build": build_of(run),
        },
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "complete": window.end >= floor_minute(run.window_ends_at),
            "logs_through": logs_through.isoformat() if logs_through else None,
            "logs_complete": logs_through is not None and logs_through >= window.end,
        },
        "thresholds": thresholds.as_dict(),
        "figures": window.figures.as_dict(),
        "incidents": [item.as_dict() for item in window.incidents],
        "stickiness": stickiness(run, window.end),
        "log_gaps": [
            [gap_start.isoformat(), gap_end.isoformat()] for gap_start, gap_end in window.log_gaps
        ],
        "attestations": {
            kind: {"value": item.value, "by": item.by, "at": item.at.isoformat(), "note": item.note}
            for kind, item in sorted(window.attestations.items())
        },
        "build_changes": [
            {
                "at": shift.at.isoformat(),
                "old": shift.old,
                "new": shift.new,
                "resolution": shift.resolution,
                "by": shift.by,
                "reason": shift.reason,
            }
            for shift in window.build_changes
        ],
        "recommendation": recommendation.as_dict(),
    }
    return Evidence(document, digest_of(signed_part(document)), recommendation, window)


def fingerprint(run: PhaseRun, now: datetime) -> str:
    """A cheap stand-in for the digest, for the page's poll: a handful of aggregates over
    everything the evidence is built from (any new or re-folded bucket moves the newest
    ``updated_at``). It only decides whether to tell the reader that the figures moved; a
    signature is always checked against the digest of freshly built evidence."""
    start, end = window_bounds(run, now)
    environment_id = run.rollout.environment_id
    changes = ConfigChange.objects.filter(
        environment_id=environment_id, kind__in=list(INCIDENT_KINDS)
    ).aggregate(newest=Max("id"))
    attested = run.attestations.aggregate(newest=Max("id"))
    builds = run.build_changes.aggregate(newest=Max("id"), answered=Max("resolved_at"))
    logs_through = logs_received_through(environment_id, end)
    parts = [
        start,
        end,
        *measurements().fingerprint(environment_id, start, end),
        changes,
        attested,
        builds,
        logs_through,
        thresholds_for(run),
    ]
    return digest_of({"parts": [str(part) for part in parts]})


def digest_of(document: dict) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# What a signature covers. Every key of the evidence document is signed — the phase and its
# window, the thresholds, the figures, the incidents, the stickiness probes, the log gaps, the
# attestations and the recommendation — except how far the logs had arrived when the page was
# built: that is bookkeeping of the pipeline, not something a signer judges. Logs that arrive
# later with the same figures leave a signature valid; logs that change a figure change the
# figures, and the signature with them. A key added to the document is signed unless named here.
UNSIGNED_WINDOW_KEYS = ("logs_through", "logs_complete")


def signed_part(document: dict) -> dict:
    """The evidence document without its bookkeeping: what the digest covers."""
    window = document.get("window", {})
    kept = {key: value for key, value in window.items() if key not in UNSIGNED_WINDOW_KEYS}
    return {**document, "window": kept}


def changes_between(old: dict, new: dict) -> list[dict]:
    """Each item that differs between two evidence documents, as facts from what to what (kept
    with a signature that no longer counts; ``evidence_words.changes_words`` says them)."""
    old, new = signed_part(old), signed_part(new)
    changes = _attestation_changes(old.get("attestations", {}), new.get("attestations", {}))
    for record in RECORDS[1:]:
        changes += _record_changes(record, old.get(record, []), new.get(record, []))
    # The recommendation is derived from the rest: only its outcome is named, the criteria
    # repeat the figures named above.
    old_leaves = _leaves({**old, "recommendation": old.get("recommendation", {}).get("outcome")})
    new_leaves = _leaves({**new, "recommendation": new.get("recommendation", {}).get("outcome")})
    for path in sorted(old_leaves.keys() | new_leaves.keys(), key=_reading_order):
        before, after = old_leaves.get(path), new_leaves.get(path)
        if before != after and path[0] not in RECORDS and path[:2] not in SHOWN_ELSEWHERE:
            changes.append({"figure": list(path), "before": before, "after": after})
    if not changes and old.get("recommendation") != new.get("recommendation"):
        changes.append({"criteria": "changed"})
    return changes


def what_changed(old: dict, new: dict) -> str:
    """What changed between two evidence documents, in words as the audit trail keeps them:
    "native 5xx rate 0.42% → 0.61%; attestation 'team agrees' added (yes by theo)"."""
    return for_the_record(evidence_words.changes_words, changes_between(old, new))


# Named record by record.
RECORDS = ("attestations", "incidents", "stickiness", "log_gaps", "build_changes")
READING_ORDER = ("figures", "recommendation", "thresholds", "window", "phase")
SHOWN_ELSEWHERE = {("figures", "start"), ("figures", "end")}  # the window's bounds
FIGURE_ORDER = (
    *evidence_words.WINDOW_FIGURES,
    *evidence_words.COHORT_FIGURES,
)


def _leaves(value, path=()) -> dict[tuple, object]:
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            found.update(_leaves(item, (*path, str(key))))
        return found
    return {path: value}


def _reading_order(path: tuple) -> tuple:
    """Sections in READING_ORDER; the window's figures before those of each cohort, each in the
    order evidence_words names them."""
    section = READING_ORDER.index(path[0]) if path[0] in READING_ORDER else len(READING_ORDER)
    rank = FIGURE_ORDER.index(path[-1]) if path[-1] in FIGURE_ORDER else len(FIGURE_ORDER)
    return (section, len(path) > 2, path[:-1], rank, path)


def _attestation_changes(old: dict, new: dict) -> list[dict]:
    changes = []
    for kind in sorted(old.keys() | new.keys()):
        before, after = old.get(kind), new.get(kind)
        if before == after:
            continue
        if before is None:
            change = {"change": "added", "value": after["value"], "by": after["by"]}
        elif after is None:
            change = {"change": "removed"}
        elif before["value"] != after["value"]:
            change = {"change": "value", "before": before["value"], "after": after["value"]}
            change["by"] = after["by"]
        else:
            change = {"change": "again", "by": after["by"], "note": after["note"]}
        changes.append({"attestation": kind, **change})
    return changes


def _record_changes(record: str, old: list, new: list) -> list[dict]:
    """Records (incidents, probes, gaps, build changes) that appeared or are gone."""
    added = [item for item in new if item not in old]
    gone = [item for item in old if item not in new]
    return [{"record": record, "change": "added", "item": item} for item in added] + [
        {"record": record, "change": "gone", "item": item} for item in gone
    ]
