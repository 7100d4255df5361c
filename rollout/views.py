from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import services
from .connection import check_connection
from .forms import InitialConfigForm
from .models import ConfigChange, DesiredConfig, Environment, Service

VIEW_PERMISSION = "rollout.view_environment"


def _environment(public_id) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("service", "desired"), public_id=public_id
    )


def _status_context(environment: Environment) -> dict:
    changes = list(
        ConfigChange.objects.filter(environment=environment).select_related("requested_by")[:10]
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
    services_ = Service.objects.prefetch_related("environments__desired", "plan__phases")
    context = {"services": services_, "rows": _overview_rows()}
    template = "rollout/_overview_rows.html" if request.htmx else "rollout/overview.html"
    return render(request, template, context)


def _overview_rows():
    environments = Environment.objects.select_related("service", "desired").order_by(
        "service__name", "-name"
    )
    return [_status_context(environment) for environment in environments]


@require_GET
@login_required
@permission_required(VIEW_PERMISSION, raise_exception=True)
def environment_detail(request, public_id):
    environment = _environment(public_id)
    context = _status_context(environment)
    if request.htmx:
        return render(request, "rollout/_environment_status.html", context)
    context["initial_form"] = InitialConfigForm(
        initial={"canary_tag": _first_phase_tag(environment)}
    )
    return render(request, "rollout/environment.html", context)


def _first_phase_tag(environment: Environment) -> str:
    plan = getattr(environment.service, "plan", None)
    first = plan.phases.first() if plan else None
    return first.tag if first else ""


@require_POST
@login_required
@permission_required("rollout.connect_environment", raise_exception=True)
def connect(request, public_id):
    environment = _environment(public_id)
    result = check_connection(environment, actor=request.user, request=request)
    desired_exists = DesiredConfig.objects.filter(environment=environment).exists()
    if result.kv_state == "valid" and not desired_exists:
        services.adopt_existing_config(
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


@require_POST
@login_required
@permission_required("rollout.connect_environment", raise_exception=True)
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
    services.create_initial_config(
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
