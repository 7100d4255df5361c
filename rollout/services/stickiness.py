"""Stickiness, measured: what the edge does with a client that holds a ``native`` cookie once a
change that lowers the native share (lower, rollback, emergency stop) is in effect.

docs/contracts.md: lowering the percent does not move clients that already hold a native
cookie (it lives 24 h); only the emergency flag overrides cookies. The page warns about it next
to every "lower" and "rollback"; this probe shows what the worker really did, once per change,
on the change and in the phase's evidence.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from integrations import edge
from integrations.edge_qa import COHORT_COOKIE, header_problem

from ..kv_writer import quiet_since
from ..models import ConfigChange

Result = ConfigChange.StickyProbe
# The native cookie lives 24 h (docs/contracts.md): after that no client holds one from before
# the change, and a probe would tell nothing about it.
COOKIE_LIFETIME = timedelta(hours=24)


def probe(change_id: int) -> float | None:
    """Probe the edge once with a ``native`` cookie and record the answer on the change.

    Returns the seconds to wait before trying again when the edge request budget had no turn
    (nothing was sent), else None: done, or nothing to do.
    """
    change = ConfigChange.objects.select_related("environment__service").filter(pk=change_id)
    change = change.first()
    if (
        change is None
        or change.state != ConfigChange.State.IN_EFFECT
        or change.sticky_probe_at is not None
        or not change.lowers_native_share
        or _newer_in_effect(change.environment_id, change.version).exists()
    ):
        return None
    # The probe is alive: the sweep leaves the change alone while this is fresh.
    ConfigChange.objects.filter(pk=change.pk).update(last_edge_probe_at=timezone.now())
    report = edge.read_qa(change.environment, max_wait=0, cookies={COHORT_COOKIE: "native"})
    if report.error == edge.BUDGET_SPENT:
        return settings.EDGE_POLL_INTERVAL_SECONDS
    result, detail = _what_it_did(report)
    ConfigChange.objects.filter(pk=change.pk, sticky_probe_at__isnull=True).update(
        sticky_probe_at=timezone.now(), sticky_probe_result=result, sticky_probe_detail=detail[:300]
    )
    return None


def due_for_sweep(now=None) -> list[int]:
    """Lowering changes in effect that no probe has looked at, whose probe was lost with the
    broker or died with its worker (no attempt for as long as the KV writer's sweep waits for a
    quiet watcher), while they are still what the edge serves and within the cookie's life."""
    now = now or timezone.now()
    unprobed = (
        ConfigChange.objects.filter(
            state=ConfigChange.State.IN_EFFECT,
            sticky_probe_at__isnull=True,
            in_effect_at__gt=now - COOKIE_LIFETIME,
        )
        .exclude(last_edge_probe_at__gt=quiet_since(now))
        .exclude(Exists(_newer_in_effect(OuterRef("environment_id"), OuterRef("version"))))
    )
    return [change.pk for change in unprobed if change.lowers_native_share]


def _newer_in_effect(environment_id, version):
    """A newer change of the environment in effect: the edge serves that one now."""
    return ConfigChange.objects.filter(
        environment_id=environment_id, version__gt=version, state=ConfigChange.State.IN_EFFECT
    )


def _what_it_did(report) -> tuple[str, str]:
    problem = report.error or header_problem(report)
    if problem:
        return Result.UNKNOWN, f"the probe with a native cookie got no cohort: {problem}"
    header = report.header
    said = f"X-Pix-Canary: cohort={header.cohort};reason={header.reason}"
    if header.cohort == "native":
        return Result.STAYED, f"a client with a native cookie is still served native ({said})"
    return Result.MOVED, f"a client with a native cookie is now served by the proxy ({said})"
