"""The guarded controls of an environment: percent, approval, rollback, emergency stop."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from outbox import notify
from outbox.models import Notification

from ..forms.controls import (
    ApprovalForm,
    DecisionNoteForm,
    EmergencyStopForm,
    LiftEmergencyForm,
    RollbackForm,
    SetPercentForm,
)
from ..models import (
    DesiredConfig,
    Environment,
    PercentRequest,
)
from ..permissions import guarded
from ..responses import confirm, fragment_or_page, redirect_after_post
from ..services import controls
from .lookups import environment_or_404


def controls_context(request, environment: Environment, **extra) -> dict:
    desired = DesiredConfig.objects.filter(environment=environment).first()
    pending = PercentRequest.objects.filter(
        environment=environment, state=PercentRequest.State.PENDING
    ).select_related("requested_by")
    context = {
        "environment": environment,
        "desired": desired,
        "pending_requests": pending,
        "superseded_requests": PercentRequest.objects.filter(
            superseded_by__environment=environment, superseded_by__version=desired.version
        ).select_related("requested_by", "superseded_by")
        if desired
        else [],
        "percent_form": SetPercentForm(
            initial={
                "expected_version": desired.version if desired else None,
                "canary_tag": desired.canary_tag if desired else "",
                "canary_percent": desired.canary_percent if desired else 0,
            }
        ),
        "rollback_form": RollbackForm(
            initial={"expected_version": desired.version if desired else None}
        ),
        "lift_form": LiftEmergencyForm(
            initial={"expected_version": desired.version if desired else None}
        ),
        "emergency_form": EmergencyStopForm(),
        "plan_phases": _plan_phases(environment),
        "slack_configured": notify.channel_configured(Notification.Channel.SLACK_DEPLOYMENTS),
    }
    context.update(extra)
    return context


def _plan_phases(environment: Environment):
    plan = getattr(environment.service, "plan", None)
    return list(plan.phases.all()) if plan else []


def _environment_page(environment) -> str:
    return reverse("rollout:environment", args=[environment.public_id])


def _render_controls(request, environment, *, status=200, **extra):
    if request.POST.get("back") == "overview":
        return _back_to_overview(request, extra)
    return fragment_or_page(
        request,
        "rollout/_controls.html",
        controls_context(request, environment, **extra),
        page=_environment_page(environment),
        status=status,
    )


def _back_to_overview(request, extra):
    """Approve and reject pressed on the overview answer there: back to it, with what happened
    (a refusal too) shown as a message; the controls fragment belongs to the environment page."""
    if extra.get("error"):
        messages.error(request, extra["error"])
    elif extra.get("success"):
        messages.success(request, extra["success"])
    return redirect_after_post(request, reverse("rollout:overview"))


def _act(request, environment, call, success=None, answer=None):
    """Run a control's service call; answer with the controls fragment and what happened.

    ``success`` turns the call's result into the message shown to the person; ``answer`` (for
    the confirmation step) turns it into the whole response instead.
    """
    try:
        result = call()
    except controls.ConfigConflict as exc:
        return _render_controls(
            request, environment, status=409, error=_("Not applied: %(exc)s.") % {"exc": exc}
        )
    except controls.ControlRefused as exc:
        return _render_controls(request, environment, status=409, error=str(exc))
    if answer is not None:
        return answer(result)
    return _render_controls(request, environment, success=success(result))


def _confirm_plan(request, environment, form, plan, *, note, danger=False):
    """The first, unconfirmed post: the control's plan (permission, state and target) shown
    for confirmation, with ``note(plan)`` under it; a refused plan is said as the act's is."""
    return _act(
        request,
        environment,
        plan,
        answer=lambda planned: confirm(
            request,
            form=form,
            description=planned.description,
            page=_environment_page(environment),
            danger=danger,
            note=note(planned),
        ),
    )


RAISE_NOTE = gettext_lazy("Raising the percent needs a second person's approval.")
STICKY_NOTE = gettext_lazy(
    "Lowering the percent does not move clients that already hold a native "
    "cookie (it lives 24 h). Only the emergency stop overrides cookies."
)


@guarded("rollout.request_change")
def set_percent(request, public_id):
    environment = environment_or_404(public_id)
    form = SetPercentForm(request.POST)
    if not form.is_valid():
        return _render_controls(request, environment, status=422, percent_form=form)
    data = form.cleaned_data
    chosen = {
        "environment": environment,
        "percent": data["canary_percent"],
        "tag": data["canary_tag"],
        "actor": request.user,
        "request": request,
    }
    if not data["confirmed"]:
        return _confirm_plan(
            request,
            environment,
            form,
            lambda: controls.plan_percent(**chosen),
            note=lambda plan: RAISE_NOTE if plan.raising else STICKY_NOTE,
        )
    return _act(
        request,
        environment,
        lambda: controls.submit_percent(
            **chosen, reason=data["reason"], expected_version=data["expected_version"]
        ),
        success=_percent_outcome,
    )


def _percent_outcome(result) -> str:
    if isinstance(result, PercentRequest):
        return _("Requested %(summary)s: waiting for a second person's approval.") % {
            "summary": result.summary
        }
    return _("Queued: %(settings)s (version %(version)s).") % {
        "settings": result.settings.describe(),
        "version": result.version,
    }


@dataclass(frozen=True)
class OnePersonControl:
    """A control that acts without a second person: the form it reads, its plan (permission,
    state and target, shown in the confirmation) and the service that does it."""

    form_class: type
    form_name: str
    plan: Callable
    act: Callable
    success: str
    danger: bool = False
    note: str = ""


ROLLBACK = OnePersonControl(
    RollbackForm,
    "rollback_form",
    controls.plan_rollback,
    controls.rollback,
    gettext_lazy("Rollback to 0% queued"),
    danger=True,
    note=STICKY_NOTE,
)


EMERGENCY_STOP = OnePersonControl(
    EmergencyStopForm,
    "emergency_form",
    controls.plan_emergency_stop,
    controls.emergency_stop,
    gettext_lazy("EMERGENCY STOP queued at the front"),
    danger=True,
    note=gettext_lazy("Overrides sticky cookies: every client goes to proxy."),
)


LIFT_EMERGENCY = OnePersonControl(
    LiftEmergencyForm,
    "lift_form",
    controls.plan_lift_emergency,
    controls.lift_emergency,
    gettext_lazy("Emergency stop lifted"),
)


def _one_person_control(request, public_id, control: OnePersonControl):
    environment = environment_or_404(public_id)
    form = control.form_class(request.POST)
    if not form.is_valid():
        # Said above the controls too: the form may not be on show in the current state.
        error = next(iter(form.errors.values()))[0]
        return _render_controls(
            request, environment, status=422, error=error, **{control.form_name: form}
        )
    data = form.cleaned_data
    person = {"environment": environment, "actor": request.user, "request": request}
    if not data["confirmed"]:
        plan = partial(control.plan, **person)
        return _confirm_plan(
            request, environment, form, plan, danger=control.danger, note=lambda _: control.note
        )
    arguments = {**person, "reason": data["reason"]}
    if form.version_required:
        arguments["expected_version"] = data["expected_version"]
    return _act(
        request,
        environment,
        lambda: control.act(**arguments),
        success=lambda result: (
            _("%(success)s (version %(version)s).")
            % {"success": control.success, "version": result.version}
        ),
    )


@guarded("rollout.rollback")
def rollback(request, public_id):
    return _one_person_control(request, public_id, ROLLBACK)


@guarded("rollout.emergency_stop")
def emergency_stop(request, public_id):
    return _one_person_control(request, public_id, EMERGENCY_STOP)


@guarded("rollout.emergency_stop")
def lift_emergency(request, public_id):
    return _one_person_control(request, public_id, LIFT_EMERGENCY)


def _percent_request(public_id) -> PercentRequest:
    return get_object_or_404(
        PercentRequest.objects.select_related("environment__service", "requested_by"),
        public_id=public_id,
    )


def _refuse_note(request, percent_request, form):
    """A note that does not fit (or a forged return address) is said so, not dropped: the
    request stays as it was."""
    field, errors = next(iter(form.errors.items()))
    what = "note" if field == "note" else _("page to return to")
    return _render_controls(
        request,
        percent_request.environment,
        status=422,
        error=_("The %(what)s was not accepted: %(errors)s") % {"what": what, "errors": errors[0]},
    )


def _decide_request(request, public_id, form_class, decide, success, confirmation=None):
    """Approve or reject a pending raise: ``decide(percent_request=, note=)`` is the service call;
    ``confirmation(percent_request, form)``, where given, answers the unconfirmed post."""
    percent_request = _percent_request(public_id)
    form = form_class(request.POST)
    if not form.is_valid():
        return _refuse_note(request, percent_request, form)
    if confirmation and not form.cleaned_data["confirmed"]:
        return confirmation(percent_request, form)
    return _act(
        request,
        percent_request.environment,
        lambda: decide(percent_request=percent_request, note=form.cleaned_data["note"]),
        success=success,
    )


@guarded("rollout.approve_increase")
def approve_request(request, public_id):
    approve = partial(controls.approve_percent_request, approver=request.user, request=request)
    return _decide_request(
        request,
        public_id,
        ApprovalForm,
        approve,
        success=lambda result: (
            _("Approved: %(settings)s queued (version %(version)s).")
            % {"settings": result.settings.describe(), "version": result.version}
        ),
        confirmation=lambda pending, form: confirm(
            request,
            form=form,
            description=_("Approve %(summary)s") % {"summary": pending.summary},
            page=_environment_page(pending.environment),
            note=_("Requested by %(requested_by)s: %(reason)s")
            % {"requested_by": pending.requested_by.get_username(), "reason": pending.reason},
        ),
    )


@require_POST
@login_required
def reject_request(request, public_id):
    """An approver rejects; the requester may cancel their own request."""
    reject = partial(controls.reject_percent_request, person=request.user, request=request)
    return _decide_request(
        request,
        public_id,
        DecisionNoteForm,
        reject,
        success=lambda done: _("Request %(state)s.") % {"state": done.state},
    )
