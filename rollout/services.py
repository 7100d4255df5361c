"""Writes that span several models: recording a change of an environment's desired config."""

import logging
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.kv_value import CanarySettings

from . import audit
from .models import ConfigChange, DesiredConfig, Environment

log = logging.getLogger(__name__)


class ConfigConflict(Exception):
    """The desired config moved on since the person looked at it."""


def enqueue_apply(environment_id: int, *, urgent: bool = False) -> bool:
    """Hand the environment to a worker. A broker outage is logged, not raised: the change is
    already committed and the periodic sweep queues it once the broker is back."""
    from .tasks import apply_desired_config

    try:
        apply_desired_config.apply_async((environment_id,), priority=0 if urgent else 5)
    except Exception as exc:  # any broker or connection error
        log.warning("could not queue the KV write for environment %s: %s", environment_id, exc)
        return False
    return True


def request_change(
    *,
    environment: Environment,
    settings: CanarySettings,
    kind: str,
    reason: str,
    expected_version: int | None,
    actor=None,
    system: str = "",
    request=None,
) -> ConfigChange:
    """Record a new desired config (version + 1) and queue its write once committed.

    ``expected_version`` is the version the person saw: if another change landed in between,
    ConfigConflict is raised and nothing is written. ``None`` means "whatever is current" and is
    only for acts that must win regardless, such as the emergency stop.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required")
    attempts = 1 if expected_version is not None else 5
    for attempt in range(attempts):
        try:
            return _record_change(
                environment=environment,
                settings=settings,
                kind=kind,
                reason=reason,
                expected_version=expected_version,
                actor=actor,
                system=system,
                request=request,
            )
        except ConfigConflict:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _record_change(
    *, environment, settings, kind, reason, expected_version, actor, system, request
) -> ConfigChange:
    with transaction.atomic():
        desired = DesiredConfig.objects.get(environment=environment)
        version = desired.version if expected_version is None else expected_version
        before = desired.settings
        updated = DesiredConfig.objects.filter(environment=environment, version=version).update(
            version=F("version") + 1,
            canary_percent=settings.canary_percent,
            canary_tag=settings.canary_tag,
            emergency_proxy=settings.emergency_proxy,
            updated_at=timezone.now(),
        )
        if not updated:
            raise ConfigConflict(
                "the config changed since this was requested "
                f"(you saw version {version}, it is now version {desired.version})"
            )
        change = ConfigChange.objects.create(
            environment=environment,
            version=version + 1,
            kind=kind,
            requested_by=actor,
            requested_by_system=system if actor is None else "",
            reason=reason,
            before=before.as_dict(),
            after=settings.as_dict(),
        )
        superseded = ConfigChange.supersede_older(environment, change.version)
        audit.record(
            action=f"config.{kind}",
            actor=actor,
            system=system,
            environment=environment,
            obj=change,
            before=before.as_dict(),
            after=settings.as_dict(),
            reason=reason,
            outcome=audit.AuditEntry.Outcome.PENDING,
            detail=f"version {change.version}"
            + (f"; supersedes {len(superseded)} open change(s)" if superseded else ""),
            request=request,
        )
        transaction.on_commit(
            partial(enqueue_apply, environment.pk, urgent=settings.emergency_proxy)
        )
    return change


def create_initial_config(
    *,
    environment: Environment,
    settings: CanarySettings,
    reason: str,
    actor=None,
    system: str = "",
    request=None,
) -> ConfigChange:
    """Version 1 of an environment's desired config, queued for writing like any change."""
    with transaction.atomic():
        DesiredConfig.objects.create(
            environment=environment,
            version=1,
            canary_percent=settings.canary_percent,
            canary_tag=settings.canary_tag,
            emergency_proxy=settings.emergency_proxy,
        )
        change = ConfigChange.objects.create(
            environment=environment,
            version=1,
            kind=ConfigChange.Kind.INITIAL,
            requested_by=actor,
            requested_by_system=system if actor is None else "",
            reason=reason,
            before=None,
            after=settings.as_dict(),
        )
        audit.record(
            action="config.initial",
            actor=actor,
            system=system,
            environment=environment,
            obj=change,
            after=settings.as_dict(),
            reason=reason,
            outcome=audit.AuditEntry.Outcome.PENDING,
            request=request,
        )
        transaction.on_commit(partial(enqueue_apply, environment.pk))
    return change


def adopt_existing_config(
    *,
    environment: Environment,
    settings: CanarySettings,
    actor=None,
    system: str = "",
    request=None,
) -> DesiredConfig:
    """Take what KV already holds as version 1, without writing anything."""
    with transaction.atomic():
        desired = DesiredConfig.objects.create(
            environment=environment,
            version=1,
            canary_percent=settings.canary_percent,
            canary_tag=settings.canary_tag,
            emergency_proxy=settings.emergency_proxy,
        )
        audit.record(
            action="config.adopted_existing",
            actor=actor,
            system=system,
            environment=environment,
            obj=desired,
            after=settings.as_dict(),
            reason="KV already held a valid config when the environment was connected",
            request=request,
        )
    return desired
