"""Writes that span several models: recording a change of an environment's desired config."""

from dataclasses import dataclass
from functools import partial, wraps

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.kv_value import CanarySettings

from ..models import ConfigChange, DesiredConfig, Environment, PercentRequest
from ..models.people import is_service_account
from ..notifications import announce_increase_requested
from ..permissions import refuse, require
from ..queueing import try_to_queue
from ..team_language import for_the_record
from . import audit
from .audit_checkpoints import enqueue_checkpoint
from .phases import mark_incident


class ConfigConflict(Exception):
    """The desired config moved on since the person looked at it. ``current_version`` is the
    version now, where the conflict is about the version; ``audited`` is set once the refusal
    is in the audit trail (``audit.refusals_audited``)."""

    audited = False

    def __init__(self, message: str, *, current_version: int | None = None):
        super().__init__(message)
        self.current_version = current_version


def enqueue_apply(environment_id: int, *, urgent: bool = False) -> bool:
    """Hand the environment to a worker. A broker outage is logged, not raised: the change is
    already committed and the periodic sweep queues it once the broker is back."""
    from ..tasks import apply_desired_config

    return try_to_queue(
        apply_desired_config,
        environment_id,
        what=f"the KV write for environment {environment_id}",
        priority=0 if urgent else 5,
    )


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
    approved_by=None,
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
                approved_by=approved_by,
            )
        except ConfigConflict:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _record_change(
    *, environment, settings, kind, reason, expected_version, actor, system, request, approved_by
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
                _(
                    "the config changed since this was requested (you saw version "
                    "%(version)s, it is now version %(version2)s)"
                )
                % {"version": version, "version2": desired.version},
                current_version=desired.version,
            )
        change = ConfigChange.objects.create(
            environment=environment,
            version=version + 1,
            kind=kind,
            requested_by=actor,
            requested_by_system=system if actor is None else "",
            approved_by=approved_by,
            reason=reason,
            before=before.as_dict(),
            after=settings.as_dict(),
        )
        superseded = ConfigChange.supersede_older(environment, change.version)
        if kind == ConfigChange.Kind.EMERGENCY_STOP:
            # Whoever pressed it — a person, an alert rule, the preview suite — the open phase
            # window (if any) is incident-hit.
            mark_incident(environment, change=change)
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
            + (f"; approved by {approved_by.get_username()}" if approved_by else "")
            + (f"; supersedes {len(superseded)} open change(s)" if superseded else ""),
            request=request,
        )
        for closed in PercentRequest.supersede_pending(change):
            audit.record(
                action="approval.superseded",
                actor=actor,
                system=system,
                environment=environment,
                obj=closed,
                detail=f"{closed.summary} (asked by {closed.requested_by.get_username()} on "
                f"version {closed.base_version}) closed as stale: version {change.version} "
                f"({kind}) replaced the version it was asked on",
                request=request,
            )
        transaction.on_commit(
            partial(enqueue_apply, environment.pk, urgent=settings.emergency_proxy)
        )
        if kind == ConfigChange.Kind.EMERGENCY_STOP:
            # Queued after the stop's KV write, and taken after it (lower priority).
            transaction.on_commit(enqueue_checkpoint)
    return change


def _create_version_one(environment: Environment, settings: CanarySettings) -> DesiredConfig:
    """The first desired config of a newly connected environment."""
    return DesiredConfig.objects.create(
        environment=environment,
        version=1,
        canary_percent=settings.canary_percent,
        canary_tag=settings.canary_tag,
        emergency_proxy=settings.emergency_proxy,
    )


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
        _create_version_one(environment, settings)
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
        desired = _create_version_one(environment, settings)
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


# --- Guarded controls -------------------------------------------------------------------------
#
# One function per control, whoever calls it (a page, its confirmation step, an alert rule, the
# preview suite, an API): ``plan_*`` checks the permission and the state and computes the target;
# the confirmation shows ``plan.description`` and the act writes ``plan.target`` from the same
# plan, so what was shown is what is written.


class ControlRefused(Exception):
    """A control that cannot act as asked; the message is for the person who clicked.
    ``audited`` is set once the refusal is in the audit trail (``audit.refusals_audited``)."""

    audited = False


STATE_REFUSALS = (ControlRefused, ConfigConflict)


def audits_refusals(kind: str):
    """A control's refusal of the state (the stop already on, already at 0%, a stale version,
    nothing to change) is audited by the control itself as ``config.<kind>.refused``, once,
    whoever called it: the page, its confirmation step, the API, a chat button. A NO-GO's
    rollback (``decision``) is not: the decision answers for it, as the alert rule and the
    preview suite (``system``) answer for theirs."""

    def decorator(control):
        @wraps(control)
        def audited(**arguments):
            with audit.refusals_audited(
                f"config.{kind}.refused",
                STATE_REFUSALS,
                actor=None if arguments.get("decision") else arguments.get("actor"),
                environment=arguments["environment"],
                reason=arguments.get("reason", ""),
                request=arguments.get("request"),
            ):
                return control(**arguments)

        return audited

    return decorator


@dataclass(frozen=True)
class Plan:
    """What a control will do: from the current desired config to ``target``, as a change of
    ``kind``."""

    environment: Environment
    desired: DesiredConfig
    target: CanarySettings
    kind: str

    @property
    def description(self) -> str:
        return describe_transition(self.environment, self.desired.settings, self.target)

    @property
    def raising(self) -> bool:
        return self.target.canary_percent > self.desired.canary_percent

    def write(self, *, reason: str, expected_version: int | None, **acting) -> ConfigChange:
        """The act: record ``target`` (the target that was shown) as the next version.
        ``acting``: who acts (``actor`` or ``system``) and the ``request``, as ``request_change``
        takes them."""
        return request_change(
            environment=self.environment,
            settings=self.target,
            kind=self.kind,
            reason=reason,
            expected_version=expected_version,
            **acting,
        )


def _desired(environment: Environment) -> DesiredConfig:
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        raise ControlRefused(_("This environment has no desired config yet: connect it first."))
    return desired


def describe_transition(
    environment: Environment, before: CanarySettings, after: CanarySettings
) -> str:
    """The confirmation text: exactly what will happen, e.g. "production: 10% → 25%, tag B2b"."""
    if after.emergency_proxy and not before.emergency_proxy:
        return _("%(name)s: EMERGENCY STOP — 100%% of traffic to proxy at once") % {
            "name": environment.name
        }
    text = _("%(name)s: %(canary_percent)s%% → %(canary_percent2)s%%, tag %(canary_tag)s") % {
        "name": environment.name,
        "canary_percent": before.canary_percent,
        "canary_percent2": after.canary_percent,
        "canary_tag": after.canary_tag,
    }
    if before.emergency_proxy and not after.emergency_proxy:
        text += _(", emergency stop lifted")
    elif after.emergency_proxy:
        text += _(" (emergency stop stays on: traffic stays on proxy)")
    return text


@audits_refusals(ConfigChange.Kind.PERCENT_CHANGE)
def plan_percent(*, environment: Environment, percent: int, tag: str, actor, request=None) -> Plan:
    """Set the percent and tag; the emergency flag stays as it is."""
    require(actor, "rollout.request_change", environment=environment, request=request)
    desired = _desired(environment)
    target = CanarySettings(percent, tag, desired.emergency_proxy)
    return Plan(environment, desired, target, ConfigChange.Kind.PERCENT_CHANGE)


@audits_refusals(ConfigChange.Kind.PERCENT_CHANGE)
def submit_percent(
    *,
    environment: Environment,
    percent: int,
    tag: str,
    reason: str,
    expected_version: int,
    actor,
    request=None,
):
    """Lowering (or keeping) the percent applies at once; raising it waits for a second person.

    Returns the ConfigChange or the PercentRequest. Raises ConfigConflict when the config moved
    on since the person looked, ControlRefused when there is nothing to do.
    """
    plan = plan_percent(
        environment=environment, percent=percent, tag=tag, actor=actor, request=request
    )
    desired, target = plan.desired, plan.target
    if desired.version != expected_version:
        raise ConfigConflict(
            _(
                "the config changed since you loaded this page (you saw version "
                "%(expected_version)s, it is now version %(version)s: %(settings)s)"
            )
            % {
                "expected_version": expected_version,
                "version": desired.version,
                "settings": desired.settings.describe(),
            },
            current_version=desired.version,
        )
    if target == desired.settings:
        raise ControlRefused(
            _("Nothing to change: %(name)s is already at %(target)s.")
            % {"name": environment.name, "target": target.describe()}
        )
    if not plan.raising:
        return plan.write(
            reason=reason, expected_version=expected_version, actor=actor, request=request
        )
    with transaction.atomic():
        percent_request = PercentRequest.objects.create(
            environment=environment,
            requested_by=actor,
            reason=reason.strip(),
            base_version=desired.version,
            from_percent=desired.canary_percent,
            to_percent=percent,
            from_tag=desired.canary_tag,
            to_tag=tag,
        )
        audit.record(
            action="approval.requested",
            actor=actor,
            environment=environment,
            obj=percent_request,
            before=desired.settings.as_dict(),
            after=target.as_dict(),
            reason=reason,
            outcome=audit.AuditEntry.Outcome.PENDING,
            detail=f"{_recorded(percent_request)}; needs a second person's approval",
            request=request,
        )
        announce_increase_requested(percent_request)
    return percent_request


def approve_percent_request(*, percent_request, approver, note: str = "", request=None):
    """The second person's approval: applies the increase if the config has not moved on. A
    refusal of the request's state is audited as ``approval.refused``."""
    environment = percent_request.environment
    require(
        approver,
        "rollout.approve_increase",
        environment=environment,
        obj=percent_request,
        request=request,
    )
    _require_decider(approver, percent_request, request)
    with _approval_refusals_audited(percent_request, approver, request):
        return _approve(percent_request, approver, note, request)


def _approve(percent_request, approver, note, request):
    environment = percent_request.environment
    if percent_request.requested_by_id == approver.pk:
        raise ControlRefused(_("You cannot approve your own request: a second person must."))
    if percent_request.state != PercentRequest.State.PENDING:
        raise ControlRefused(_already_decided(percent_request))
    desired = _desired(environment)
    if desired.version != percent_request.base_version:
        percent_request.decide(
            state=PercentRequest.State.STALE,
            by=approver,
            note=_("config moved to version %(version)s") % {"version": desired.version},
        )
        raise ControlRefused(
            _(
                "The config changed since this was requested (requested on version "
                "%(base_version)s, now version %(version)s); the request is now stale. "
                "Ask for a new one."
            )
            % {"base_version": percent_request.base_version, "version": desired.version}
        )
    target = CanarySettings(
        percent_request.to_percent, percent_request.to_tag, desired.emergency_proxy
    )
    with transaction.atomic():
        # Decided first: the change below closes every raise still pending, but not this one.
        if not percent_request.decide(state=PercentRequest.State.APPROVED, by=approver, note=note):
            raise ConfigConflict(_already_decided(percent_request))
        change = request_change(
            environment=environment,
            settings=target,
            kind=ConfigChange.Kind.PERCENT_CHANGE,
            reason=percent_request.reason,
            expected_version=percent_request.base_version,
            actor=percent_request.requested_by,
            request=request,
            approved_by=approver,
        )
        PercentRequest.objects.filter(pk=percent_request.pk).update(change=change)
        percent_request.change = change
        audit.record(
            action="approval.approved",
            actor=approver,
            environment=environment,
            obj=percent_request,
            after=target.as_dict(),
            reason=note,
            detail=f"{_recorded(percent_request)}; change version {change.version}",
            request=request,
        )
    return change


def _approval_refusals_audited(percent_request, person, request):
    """A refused approval, rejection or cancellation, audited once as ``approval.refused``."""
    return audit.refusals_audited(
        "approval.refused",
        STATE_REFUSALS,
        actor=person,
        environment=percent_request.environment,
        obj=percent_request,
        request=request,
    )


def _require_decider(person, percent_request, request) -> None:
    """Who decides on another's increase: an approver, and a person. Never a service account,
    whatever its role: its token may be held by the person who asked, who would then be both of
    the two people the rule wants."""
    if is_service_account(person):
        needs, message = (
            "a person",
            _(
                "A service account cannot approve or reject a percent increase: a second "
                "person must."
            ),
        )
    elif not person.has_perm("rollout.approve_increase"):
        needs, message = (
            "rollout.approve_increase or to be the requester",
            _("Only an approver or the requester can reject this request."),
        )
    else:
        return
    refuse(
        message,
        needs=needs,
        environment=percent_request.environment,
        obj=percent_request,
        actor=person,
        request=request,
    )


def reject_percent_request(*, percent_request, person, note: str, request=None):
    """Reject (an approver) or cancel (the requester) a pending request."""
    cancelling = percent_request.requested_by_id == person.pk
    if not cancelling:
        _require_decider(person, percent_request, request)
    state = PercentRequest.State.CANCELLED if cancelling else PercentRequest.State.REJECTED
    with _approval_refusals_audited(percent_request, person, request):
        if not percent_request.decide(state=state, by=person, note=note):
            raise ControlRefused(_already_decided(percent_request))
    audit.record(
        action="approval.cancelled" if cancelling else "approval.rejected",
        actor=person,
        environment=percent_request.environment,
        obj=percent_request,
        reason=note,
        detail=_recorded(percent_request),
        request=request,
    )
    return percent_request


def _already_decided(percent_request) -> str:
    percent_request.refresh_from_db()
    superseding = percent_request.superseded_by
    if superseding is not None:
        return _(
            "This request was closed as stale: version %(version)s (%(kind)s) replaced the "
            "version %(base_version)s it was asked on. Ask for a new one."
        ) % {
            "version": superseding.version,
            "kind": superseding.get_kind_display(),
            "base_version": percent_request.base_version,
        }
    who = percent_request.decided_by.get_username() if percent_request.decided_by else "someone"
    return _("This request is already %(lower)s (by %(who)s).") % {
        "lower": percent_request.get_state_display().lower(),
        "who": who,
    }


@audits_refusals(ConfigChange.Kind.EMERGENCY_STOP)
def plan_emergency_stop(
    *, environment: Environment, actor=None, system: str = "", request=None
) -> Plan:
    """emergency_proxy on, percent 0; refused when the stop is already on."""
    require(
        actor, "rollout.emergency_stop", system=system, environment=environment, request=request
    )
    desired = _desired(environment)
    if desired.emergency_proxy:
        raise ControlRefused(
            _("The emergency stop is already active on %(name)s.") % {"name": environment.name}
        )
    return Plan(
        environment, desired, emergency_stop_target(desired), ConfigChange.Kind.EMERGENCY_STOP
    )


def emergency_stop_target(desired: DesiredConfig) -> CanarySettings:
    """What the stop writes: emergency_proxy on, percent 0, the tag kept. Also what a
    confirmation asked before the stop's permission is known (the Slack dialog) names."""
    return CanarySettings(0, desired.canary_tag, True)


@audits_refusals(ConfigChange.Kind.EMERGENCY_STOP)
def emergency_stop(
    *, environment: Environment, reason: str, actor=None, system: str = "", request=None
) -> ConfigChange:
    """NOT-AUS: emergency_proxy on, percent 0, at once, whatever version is current. Pressed by
    a person, by an alert rule (``system="rule:…"``) or by the preview suite's emergency check."""
    plan = plan_emergency_stop(environment=environment, actor=actor, system=system, request=request)
    return plan.write(
        reason=reason, expected_version=None, actor=actor, system=system, request=request
    )


@audits_refusals(ConfigChange.Kind.LIFT_EMERGENCY)
def plan_lift_emergency(*, environment: Environment, actor, request=None) -> Plan:
    """Turn the emergency flag off; the percent stays where the stop put it (0%)."""
    require(actor, "rollout.emergency_stop", environment=environment, request=request)
    desired = _desired(environment)
    if not desired.emergency_proxy:
        raise ControlRefused(
            _("The emergency stop is not active on %(name)s.") % {"name": environment.name}
        )
    target = CanarySettings(desired.canary_percent, desired.canary_tag, False)
    return Plan(environment, desired, target, ConfigChange.Kind.LIFT_EMERGENCY)


@audits_refusals(ConfigChange.Kind.LIFT_EMERGENCY)
def lift_emergency(
    *, environment: Environment, reason: str, expected_version: int, actor, request=None
) -> ConfigChange:
    """Turn the emergency flag off; the percent stays where the stop put it (0%)."""
    plan = plan_lift_emergency(environment=environment, actor=actor, request=request)
    return plan.write(
        reason=reason, expected_version=expected_version, actor=actor, request=request
    )


@audits_refusals(ConfigChange.Kind.ROLLBACK)
def plan_rollback(*, environment: Environment, actor, request=None, decision=None) -> Plan:
    """Back to 0% native; the tag stays so the edge still names the phase.

    A person's rollback needs ``rollout.rollback`` and also turns an active emergency stop off.
    A NO-GO ``decision`` that took effect is authorised by its two signatures instead (``actor``
    is its second signer, who may be a tech lead without the rollback permission), and it leaves
    an active stop on: lifting the stop sends traffic back to native and is a control of its own.
    """
    if decision is None:
        require(actor, "rollout.rollback", environment=environment, request=request)
    desired = _desired(environment)
    emergency = desired.emergency_proxy if decision is not None else False
    target = CanarySettings(0, desired.canary_tag, emergency)
    if target == desired.settings:
        raise ControlRefused(_("%(name)s is already at 0%%.") % {"name": environment.name})
    return Plan(environment, desired, target, ConfigChange.Kind.ROLLBACK)


@audits_refusals(ConfigChange.Kind.ROLLBACK)
def rollback(
    *,
    environment: Environment,
    reason: str,
    expected_version: int | None,
    actor,
    request=None,
    decision=None,
) -> ConfigChange:
    """Back to 0% native; the tag stays so the edge still names the phase. A NO-GO ``decision``
    rolls back whatever version is current (``expected_version=None``), like the stop."""
    plan = plan_rollback(environment=environment, actor=actor, request=request, decision=decision)
    return plan.write(
        reason=reason, expected_version=expected_version, actor=actor, request=request
    )


def _recorded(percent_request: PercentRequest) -> str:
    """A request's summary as the audit trail keeps it: in English."""
    return for_the_record(lambda: percent_request.summary)
