from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from integrations.kv_value import CanarySettings
from monitoring import notify
from monitoring.models import Notification

from .forms import (
    DecisionNoteForm,
    EmergencyStopForm,
    InitialConfigForm,
    LiftEmergencyForm,
    RollbackForm,
    SetPercentForm,
)
from .models import (
    ConfigChange,
    DesiredConfig,
    Environment,
    PercentRequest,
    PhaseRun,
    Rollout,
)
from .permissions import guarded, refuse
from .services import controls, phases
from .services.environments import check_connection

VIEW_PERMISSION = "rollout.view_environment"


def _environment(public_id) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("service", "desired"), public_id=public_id
    )


def _status_context(environment: Environment) -> dict:
    changes = list(
        ConfigChange.objects.filter(environment=environment).select_related(
            "requested_by", "approved_by"
        )[:10]
    )
    return {
        "environment": environment,
        "desired": DesiredConfig.objects.filter(environment=environment).first(),
        "changes": changes,
        "open_changes": [change for change in changes if change.is_open],
    }


@require_GET
@login_required
@permission_required(VIEW_PERMISSION, raise_exception=True)
def overview(request):
    if request.htmx:
        return _live_fragment(
            "overview",
            lambda: render_to_string("rollout/_overview_rows.html", {"rows": _overview_rows()}),
        )
    return render(request, "rollout/overview.html", {"rows": _overview_rows()})


def _live_fragment(name: str, render_html: Callable[[], str]) -> HttpResponse:
    """A live fragment, rendered at most once per LIVE_FRAGMENT_CACHE_SECONDS for everyone.

    The overview and environment fragments are polled every 2 s by everyone who has the page
    open: with 50 viewers that is 25 renderings a second of the same few rows. They show
    nothing that depends on who asks (rendered without the request, so nothing can: no user,
    no permissions, no CSRF token), so one rendering serves every poll for a second, and what
    is left per poll is the log-in and permission check. A change shows up at most that second
    later; the person who acted sees their own action's answer at once (it is not cached).
    """
    seconds = settings.LIVE_FRAGMENT_CACHE_SECONDS
    if seconds <= 0:
        return HttpResponse(render_html())
    key = f"live-fragment:{name}"
    html = cache.get(key)
    if html is None:
        html = render_html()
        cache.set(key, html, seconds)
    return HttpResponse(html)


def _overview_rows():
    """One row per environment in five queries, whatever the number of environments: the
    overview fragment is polled every 2 s by everyone who has the page open."""
    open_changes = Prefetch(
        "changes",
        queryset=ConfigChange.objects.filter(state__in=ConfigChange.OPEN_STATES),
        to_attr="open_changes",
    )
    open_runs = Prefetch(
        "phase_runs",
        queryset=PhaseRun.objects.filter(state__in=PhaseRun.OPEN_STATES).select_related("phase"),
        to_attr="open_runs",
    )
    active_rollouts = Prefetch(
        "rollouts",
        queryset=Rollout.objects.exclude(state__in=Rollout.FINISHED_STATES).prefetch_related(
            open_runs
        ),
        to_attr="active_rollouts",
    )
    environments = (
        Environment.objects.select_related("service", "desired")
        .prefetch_related(open_changes, active_rollouts)
        .order_by("service__name", "-name")
    )
    rows = []
    for environment in environments:
        rollout = next(iter(environment.active_rollouts), None)
        rows.append(
            {
                "environment": environment,
                "desired": getattr(environment, "desired", None),
                "open_changes": environment.open_changes,
                "rollout": rollout,
                "phase_run": next(iter(rollout.open_runs), None) if rollout else None,
            }
        )
    return rows


@require_GET
@login_required
@permission_required(VIEW_PERMISSION, raise_exception=True)
def environment_detail(request, public_id):
    if request.htmx:
        return _live_fragment(
            f"environment:{public_id}",
            lambda: render_to_string(
                "rollout/_environment_status.html", _status_context(_environment(public_id))
            ),
        )
    environment = _environment(public_id)
    context = _status_context(environment)
    context.update(_controls_context(request, environment))
    context["rollout"] = phases.active_rollout(environment)
    if context["rollout"]:
        context["rollout"] = phases.advance(context["rollout"])
        context["phase_run"] = phases.open_run(context["rollout"])
    context["initial_form"] = InitialConfigForm(
        initial={"canary_tag": _first_phase_tag(environment)}
    )
    return render(request, "rollout/environment.html", context)


def _first_phase_tag(environment: Environment) -> str:
    plan = getattr(environment.service, "plan", None)
    first = plan.phases.first() if plan else None
    return first.tag if first else ""


@guarded("rollout.connect_environment")
def connect(request, public_id):
    environment = _environment(public_id)
    result = check_connection(environment, actor=request.user, request=request)
    desired_exists = DesiredConfig.objects.filter(environment=environment).exists()
    if result.kv_state == "valid" and not desired_exists:
        controls.adopt_existing_config(
            environment=environment,
            settings=result.kv_settings,
            actor=request.user,
            request=request,
        )
    context = {
        **_status_context(environment),
        "check": result,
        "initial_form": InitialConfigForm(initial={"canary_tag": _first_phase_tag(environment)}),
    }
    return render(request, "rollout/_connection_result.html", context)


@guarded("rollout.connect_environment")
def write_initial(request, public_id):
    environment = _environment(public_id)
    form = InitialConfigForm(request.POST)
    if DesiredConfig.objects.filter(environment=environment).exists():
        form.add_error(
            None,
            "This environment already has a desired config; change it from the controls instead.",
        )
    if environment.connected_at is None:
        form.add_error(None, "Check the connection first.")
    if not form.is_valid():
        return render(
            request,
            "rollout/_initial_form.html",
            {"environment": environment, "initial_form": form},
            status=422,
        )
    controls.create_initial_config(
        environment=environment,
        settings=form.canary_settings(),
        reason=form.cleaned_data["reason"],
        actor=request.user,
        request=request,
    )
    messages.success(request, f"Initial value queued for {environment}.")
    response = redirect("rollout:environment", public_id=environment.public_id)
    if request.htmx:
        response["HX-Redirect"] = response["Location"]
    return response


# --- Guarded controls -------------------------------------------------------------------------


def _controls_context(request, environment: Environment, **extra) -> dict:
    desired = DesiredConfig.objects.filter(environment=environment).first()
    pending = PercentRequest.objects.filter(
        environment=environment, state=PercentRequest.State.PENDING
    ).select_related("requested_by")
    context = {
        "environment": environment,
        "desired": desired,
        "pending_requests": pending,
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


def _render_controls(request, environment, *, status=200, **extra):
    return render(
        request,
        "rollout/_controls.html",
        _controls_context(request, environment, **extra),
        status=status,
    )


def _confirm(request, environment, *, action_url, form, description, danger=False, note=""):
    return render(
        request,
        "rollout/_confirm.html",
        {
            "environment": environment,
            "action_url": action_url,
            "form": form,
            "description": description,
            "danger": danger,
            "note": note,
        },
    )


def _act(request, environment, call, success):
    """Run a control's service call; answer with the controls fragment and what happened.

    ``success`` turns the call's result into the message shown to the person.
    """
    try:
        result = call()
    except controls.ConfigConflict as exc:
        return _render_controls(request, environment, status=409, error=f"Not applied: {exc}.")
    except controls.ControlRefused as exc:
        return _render_controls(request, environment, status=409, error=str(exc))
    return _render_controls(request, environment, success=success(result))


STICKY_NOTE = (
    "Lowering the percent does not move clients that already hold a native cookie "
    "(it lives 24 h). Only the emergency stop overrides cookies."
)


@guarded("rollout.request_change")
def set_percent(request, public_id):
    environment = _environment(public_id)
    form = SetPercentForm(request.POST)
    if not form.is_valid():
        return _render_controls(request, environment, status=422, percent_form=form)
    data = form.cleaned_data
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        return _render_controls(
            request, environment, status=409, error="This environment has no desired config yet."
        )
    target = CanarySettings(data["canary_percent"], data["canary_tag"], desired.emergency_proxy)
    if not data["confirmed"]:
        raising = target.canary_percent > desired.canary_percent
        return _confirm(
            request,
            environment,
            action_url=request.path,
            form=form,
            description=controls.describe_transition(environment, desired.settings, target),
            note="Raising the percent needs a second person's approval."
            if raising
            else STICKY_NOTE,
        )

    return _act(
        request,
        environment,
        lambda: controls.submit_percent(
            environment=environment,
            percent=target.canary_percent,
            tag=target.canary_tag,
            reason=data["reason"],
            expected_version=data["expected_version"],
            actor=request.user,
            request=request,
        ),
        success=_percent_outcome,
    )


def _percent_outcome(result) -> str:
    if isinstance(result, PercentRequest):
        return f"Requested {result.summary}: waiting for a second person's approval."
    return f"Queued: {result.settings.describe()} (version {result.version})."


@dataclass(frozen=True)
class OnePersonControl:
    """A control that acts without a second person: the form it reads, the config it aims
    for (shown in the confirmation), the service that does it."""

    form_class: type
    form_name: str
    target: Callable[[DesiredConfig], CanarySettings]
    act: Callable
    success: str
    danger: bool = False
    note: str = ""


ROLLBACK = OnePersonControl(
    RollbackForm,
    "rollback_form",
    lambda d: CanarySettings(0, d.canary_tag, False),
    controls.rollback,
    "Rollback to 0% queued",
    danger=True,
    note=STICKY_NOTE,
)
EMERGENCY_STOP = OnePersonControl(
    EmergencyStopForm,
    "emergency_form",
    lambda d: CanarySettings(0, d.canary_tag, True),
    controls.emergency_stop,
    "EMERGENCY STOP queued at the front",
    danger=True,
    note="Overrides sticky cookies: every client goes to proxy.",
)
LIFT_EMERGENCY = OnePersonControl(
    LiftEmergencyForm,
    "lift_form",
    lambda d: CanarySettings(d.canary_percent, d.canary_tag, False),
    controls.lift_emergency,
    "Emergency stop lifted",
)


def _one_person_control(request, public_id, control: OnePersonControl):
    environment = _environment(public_id)
    form = control.form_class(request.POST)
    if not form.is_valid():
        # Said above the controls too: the form may not be on show in the current state.
        error = next(iter(form.errors.values()))[0]
        return _render_controls(
            request, environment, status=422, error=error, **{control.form_name: form}
        )
    data = form.cleaned_data
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if not data["confirmed"] and desired is not None:
        return _confirm(
            request,
            environment,
            action_url=request.path,
            form=form,
            danger=control.danger,
            description=controls.describe_transition(
                environment, desired.settings, control.target(desired)
            ),
            note=control.note,
        )
    arguments = {
        "environment": environment,
        "reason": data["reason"],
        "actor": request.user,
        "request": request,
    }
    if form.version_required:
        arguments["expected_version"] = data["expected_version"]
    return _act(
        request,
        environment,
        lambda: control.act(**arguments),
        success=lambda result: f"{control.success} (version {result.version}).",
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
    """A note that does not fit is said so, not dropped: the request stays as it was."""
    return _render_controls(
        request,
        percent_request.environment,
        status=422,
        error=f"The note was not accepted: {form.errors['note'][0]}",
    )


@guarded("rollout.approve_increase")
def approve_request(request, public_id):
    percent_request = _percent_request(public_id)
    form = DecisionNoteForm(request.POST)
    if not form.is_valid():
        return _refuse_note(request, percent_request, form)
    note = form.cleaned_data["note"]
    return _act(
        request,
        percent_request.environment,
        lambda: controls.approve_percent_request(
            percent_request=percent_request,
            approver=request.user,
            note=note,
            request=request,
        ),
        success=lambda result: (
            f"Approved: {result.settings.describe()} queued (version {result.version})."
        ),
    )


@require_POST
@login_required
def reject_request(request, public_id):
    """An approver rejects; the requester may cancel their own request."""
    percent_request = _percent_request(public_id)
    is_requester = percent_request.requested_by_id == request.user.pk
    if not (is_requester or request.user.has_perm("rollout.approve_increase")):
        refuse(
            "Only an approver or the requester can reject this request.",
            needs="rollout.approve_increase or to be the requester",
            environment=percent_request.environment,
            obj=percent_request,
        )
    form = DecisionNoteForm(request.POST)
    if not form.is_valid():
        return _refuse_note(request, percent_request, form)
    note = form.cleaned_data["note"]
    return _act(
        request,
        percent_request.environment,
        lambda: controls.reject_percent_request(
            percent_request=percent_request,
            person=request.user,
            note=note,
            request=request,
        ),
        success=lambda result: f"Request {result.state}.",
    )
