"""The overview, an environment's page and connecting an environment."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..forms.environments import InitialConfigForm
from ..models import (
    BuildChange,
    CheckIn,
    ConfigChange,
    DesiredConfig,
    Environment,
    PercentRequest,
    Phase,
    PhaseRun,
    Rollout,
)
from ..permissions import guarded, shown_to
from ..responses import fragment_or_page, redirect_after_post
from ..services import attention, controls, deployments, phases
from ..services.environments import check_connection
from .controls import controls_context
from .lookups import VIEW_PERMISSION, environment_or_404


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


@shown_to(VIEW_PERMISSION)
def overview(request):
    if request.htmx and request.user.has_perm(APPROVE_PERMISSION):
        # Approve and reject are shown to an approver only, with their own CSRF token: their
        # rendering is their own (approvers are few; everyone else shares one).
        return _live_fragment(
            f"overview:{request.session.session_key}",
            lambda: render_to_string(
                "rollout/_overview_rows.html", {"rows": _overview_rows()}, request=request
            ),
        )
    if request.htmx:
        return _live_fragment(
            "overview",
            lambda: render_to_string("rollout/_overview_rows.html", {"rows": _overview_rows()}),
        )
    return render(request, "rollout/overview.html", {"rows": _overview_rows()})


APPROVE_PERMISSION = "rollout.approve_increase"


def _live_fragment(name: str, render_html: Callable[[], str]) -> HttpResponse:
    """A live fragment, rendered at most once per LIVE_FRAGMENT_CACHE_SECONDS for everyone.

    The overview and environment fragments are polled every 2 s by everyone who has the page
    open: with 50 viewers that is 25 renderings a second of the same few rows. They show
    nothing that depends on who asks (rendered without the request, so nothing can: no user,
    no permissions, no CSRF token), so one rendering serves every poll for a second, and what
    is left per poll is the log-in and permission check. A change shows up at most that second
    later; the person who acted sees their own action's answer at once (it is not cached).
    Times are shown in the viewer's zone, so there is one rendering per zone in use.
    """
    seconds = settings.LIVE_FRAGMENT_CACHE_SECONDS
    if seconds <= 0:
        return HttpResponse(render_html())
    key = f"live-fragment:{name}:{timezone.get_current_timezone_name()}"
    html = cache.get(key)
    if html is None:
        html = render_html()
        cache.set(key, html, seconds)
    return HttpResponse(html)


def _overview_rows():
    """One row per environment, with what needs a person on it, in a fixed number of queries
    whatever the number of environments: the overview fragment is polled every 2 s by everyone
    who has the page open."""
    now = timezone.now()
    open_changes = Prefetch(
        "changes",
        queryset=ConfigChange.objects.filter(state__in=ConfigChange.OPEN_STATES),
        to_attr="open_changes",
    )
    open_check_ins = Prefetch(
        "check_ins",
        queryset=CheckIn.objects.filter(acknowledged_at__isnull=True, due_at__lte=now),
        to_attr="open_check_ins",
    )
    open_build_changes = Prefetch(
        "build_changes",
        queryset=BuildChange.objects.filter(resolution="").select_related("before", "after"),
        to_attr="open_build_changes",
    )
    open_runs = Prefetch(
        "phase_runs",
        queryset=PhaseRun.objects.filter(state__in=PhaseRun.OPEN_STATES)
        .select_related("phase")
        .prefetch_related(open_check_ins, open_build_changes),
        to_attr="open_runs",
    )
    pending_requests = Prefetch(
        "percent_requests",
        queryset=PercentRequest.objects.filter(state=PercentRequest.State.PENDING).select_related(
            "requested_by"
        ),
        to_attr="pending_requests",
    )
    all_runs = Prefetch(
        "phase_runs", queryset=PhaseRun.objects.select_related("phase"), to_attr="all_runs"
    )
    plan_phases = Prefetch(
        "plan__phases", queryset=Phase.objects.order_by("position"), to_attr="in_order"
    )
    active_rollouts = Prefetch(
        "rollouts",
        queryset=Rollout.objects.exclude(state__in=Rollout.FINISHED_STATES)
        .select_related("plan")
        .prefetch_related(open_runs, all_runs, plan_phases),
        to_attr="active_rollouts",
    )
    environments = (
        Environment.objects.select_related("service", "desired", "live_deployment")
        .prefetch_related(open_changes, active_rollouts, pending_requests)
        .order_by("service__name", "-name")
    )
    environments = list(environments)
    for environment in environments:
        for rollout in environment.active_rollouts:
            phases.as_of(now, rollout, rollout.open_runs)
    needs = attention.needs(environments, now)
    effective = phases.effective_decisions(
        [rollout.pk for environment in environments for rollout in environment.active_rollouts]
    )
    rows = []
    for environment in environments:
        rollout = next(iter(environment.active_rollouts), None)
        run = next(iter(rollout.open_runs), None) if rollout else None
        rows.append(
            {
                "environment": environment,
                "desired": getattr(environment, "desired", None),
                "open_changes": environment.open_changes,
                "rollout": rollout,
                "phase_run": run,
                "against_plan": phases.against_plan(run.phase, environment.desired)
                if run and hasattr(environment, "desired")
                else None,
                "pending_requests": environment.pending_requests,
                "needs": needs.get(environment.pk, []),
                "progress": phases.progress(
                    rollout,
                    _as_shown(rollout),
                    plan_phases=rollout.plan.in_order,
                    effective=effective,
                )
                if rollout
                else [],
            }
        )
    return rows


def _as_shown(rollout):
    """Every window of the rollout, the open ones as ``as_of`` shows them (decision due once the
    window's end has passed)."""
    shown = {run.pk: run for run in rollout.open_runs}
    return [shown.get(run.pk, run) for run in rollout.all_runs]


@shown_to(VIEW_PERMISSION)
def environment_detail(request, public_id):
    if request.htmx:
        return _live_fragment(
            f"environment:{public_id}",
            lambda: render_to_string(
                "rollout/_environment_status.html", _status_context(environment_or_404(public_id))
            ),
        )
    environment = environment_or_404(public_id)
    context = _status_context(environment)
    context.update(controls_context(request, environment))
    context["rollout"] = phases.active_rollout(environment)
    if context["rollout"]:
        context["phase_run"] = phases.open_run(context["rollout"])
        phases.as_of(timezone.now(), context["rollout"], [context["phase_run"]])
    context["initial_form"] = InitialConfigForm(
        initial={"canary_tag": _first_phase_tag(environment)}
    )
    if environment.worker_script_name:
        context["live"] = deployments.current_build(environment)  # what the suite verifies
    return render(request, "rollout/environment.html", context)


def _first_phase_tag(environment: Environment) -> str:
    plan = getattr(environment.service, "plan", None)
    first = plan.phases.first() if plan else None
    return first.tag if first else ""


@guarded("rollout.connect_environment")
def connect(request, public_id):
    environment = environment_or_404(public_id)
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
    return fragment_or_page(
        request,
        "rollout/_connection_result.html",
        context,
        page=reverse("rollout:environment", args=[environment.public_id]),
    )


@guarded("rollout.connect_environment")
def write_initial(request, public_id):
    environment = environment_or_404(public_id)
    form = InitialConfigForm(request.POST)
    if DesiredConfig.objects.filter(environment=environment).exists():
        form.add_error(
            None,
            _(
                "This environment already has a desired config; change it from the "
                "controls instead."
            ),
        )
    if environment.connected_at is None:
        form.add_error(None, _("Check the connection first."))
    if not form.is_valid():
        return fragment_or_page(
            request,
            "rollout/_initial_form.html",
            {"environment": environment, "initial_form": form},
            page=reverse("rollout:environment", args=[environment.public_id]),
            status=422,
        )
    controls.create_initial_config(
        environment=environment,
        settings=form.canary_settings(),
        reason=form.cleaned_data["reason"],
        actor=request.user,
        request=request,
    )
    messages.success(
        request, _("Initial value queued for %(environment)s.") % {"environment": environment}
    )
    return redirect_after_post(
        request, reverse("rollout:environment", args=[environment.public_id])
    )
