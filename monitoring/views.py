import hashlib

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from rollout.models import DesiredConfig, Environment
from rollout.permissions import guarded, shown_to
from rollout.responses import confirm, fragment_or_page, redirect_after_post
from rollout.services.controls import ConfigConflict

from . import charts, drift, sampler
from .forms import CheckFilterForm, DriftDecisionForm
from .models import CohortSample, DriftEvent, DriftState, HealthCheck, HourlySummary

VIEW_PERMISSION = "rollout.view_environment"
HISTORY_SAMPLES = 30
CHECKS_PER_PAGE = 50
# The checks page lists the last day of hourly summaries.
HOURLY_SUMMARIES = 24


def _environment(public_id) -> Environment:
    return get_object_or_404(Environment.objects.select_related("service"), public_id=public_id)


def _token(*parts) -> str:
    """Fingerprint of what a fragment shows, so a poll can be answered "nothing changed"."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def panel_context(environment: Environment) -> dict:
    desired = DesiredConfig.objects.filter(environment=environment).first()
    recent = list(
        CohortSample.objects.filter(environment=environment).order_by("-created_at", "-id")[
            : HISTORY_SAMPLES + 1
        ]
    )
    open_sample = next((s for s in recent if s.state in CohortSample.OPEN_STATES), None)
    done = [s for s in recent if s.state == CohortSample.State.DONE][:HISTORY_SAMPLES]
    latest = done[0] if done else None
    last_failed = next((s for s in recent if s.state == CohortSample.State.FAILED), None)
    if last_failed and latest and last_failed.created_at < latest.created_at:
        last_failed = None
    check = HealthCheck.objects.filter(environment=environment).first()
    state = DriftState.objects.filter(environment=environment).first()
    plan_percent = 0 if desired is None or desired.emergency_proxy else desired.canary_percent
    # The plan the latest sample was judged against (the desired config may have moved on).
    judged_plan = (
        (0 if latest.emergency else latest.expected_percent or 0) if latest else plan_percent
    )
    token = _token(
        desired.version if desired else None,
        [(s.pk, s.state, s.probed, s.rate_limited) for s in recent[:2]],
        check.pk if check else None,
        (state.kv_state, state.edge_state, state.kv_hash, state.resolution) if state else None,
    )
    return {
        "environment": environment,
        "desired": desired,
        "plan_percent": plan_percent,
        "latest": latest,
        "open_sample": open_sample,
        "last_failed": last_failed,
        "bar": charts.split_bar(latest, judged_plan),
        "judged_plan": judged_plan,
        "history": charts.history(list(reversed(done))),
        "check": check,
        "drift": state,
        "token": token,
    }


def drift_context(environment: Environment, form: DriftDecisionForm | None = None) -> dict:
    state = DriftState.objects.filter(environment=environment).first()
    desired = DesiredConfig.objects.filter(environment=environment).first()
    return {
        "environment": environment,
        "drift": state,
        "desired": desired,
        "form": form or DriftDecisionForm(),
        # While a decision is open, only what the decision is about re-renders the card, so a
        # reason being typed is not wiped by an unrelated change of the edge's state.
        "token": _token(
            desired.version if desired else None,
            (state.kv_state, state.kv_hash, state.resolution) if state else None,
            state.edge_state if state and not state.needs_decision else None,
        ),
    }


# --- reading ------------------------------------------------------------------------------------


@shown_to(VIEW_PERMISSION)
def environment_page(request, public_id):
    """The standalone monitoring page: cohort panel, drift and the latest drift events."""
    environment = _environment(public_id)
    context = {
        **panel_context(environment),
        "drift_fragment": drift_context(environment),
        "events": DriftEvent.objects.filter(environment=environment)[:10],
    }
    return render(request, "monitoring/environment.html", context)


@shown_to(VIEW_PERMISSION)
def cohort_panel(request, public_id):
    """The live cohort panel alone (HTMX polls it; 204 when nothing changed)."""
    return _polled(request, "monitoring/_cohort_panel.html", panel_context(_environment(public_id)))


@shown_to(VIEW_PERMISSION)
def drift_fragment(request, public_id):
    """The drift card alone (HTMX polls it; 204 when nothing changed)."""
    return _polled(request, "monitoring/_drift.html", drift_context(_environment(public_id)))


def _polled(request, template, context):
    """A fragment htmx polls: 204 (leave the page as it is) when the poll's token, ``u``, is the
    token of what the fragment would show now."""
    if request.GET.get("u") == context["token"]:
        return HttpResponse(status=204)
    return render(request, template, context)


@shown_to(VIEW_PERMISSION)
def checks(request, public_id):
    """The health checks history, newest first, paginated and filterable by verdict."""
    environment = _environment(public_id)
    form = CheckFilterForm(request.GET)
    rows = HealthCheck.objects.filter(environment=environment)
    verdict = form.cleaned_data["verdict"] if form.is_valid() else ""
    if verdict:
        rows = rows.filter(verdict=verdict)
    page = Paginator(rows, CHECKS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "environment": environment,
        "form": form,
        "page": page,
        "verdict": verdict,
        "summaries": HourlySummary.objects.filter(environment=environment)[:HOURLY_SUMMARIES],
    }
    template = "monitoring/_checks_table.html" if request.htmx else "monitoring/checks.html"
    return render(request, template, context)


# --- acting -------------------------------------------------------------------------------------


@guarded("monitoring.run_sample")
def sample_now(request, public_id):
    """Take a cohort sample now (a worker runs it; the panel shows it when done)."""
    environment = _environment(public_id)
    sampler.queue_sample(
        environment, trigger=CohortSample.Trigger.MANUAL, requested_by=request.user
    )
    if not request.htmx:
        return redirect("monitoring:environment", public_id=environment.public_id)
    return render(request, "monitoring/_cohort_panel.html", panel_context(environment))


def _decide(request, public_id, plan, decision):
    environment = _environment(public_id)
    form = DriftDecisionForm(request.POST)
    page = reverse("monitoring:environment", args=[environment.public_id])
    status = 422
    if form.is_valid():
        data = form.cleaned_data
        seen = {
            "environment": environment,
            "kv_hash": data["kv_hash"],
            "actor": request.user,
            "request": request,
        }
        try:
            if not data["confirmed"]:
                return confirm(
                    request,
                    form=form,
                    description=plan(**seen).description,
                    page=page,
                    target=f"drift-{environment.public_id}",
                    danger=plan is drift.plan_overwrite,
                )
            decision(**seen, expected_version=data["expected_version"], reason=data["reason"])
        except (drift.DriftMoved, ConfigConflict) as exc:
            form.add_error(None, str(exc))
            status = 409
    if form.errors:
        return fragment_or_page(
            request,
            "monitoring/_drift.html",
            drift_context(environment, form),
            page=page,
            status=status,
        )
    if request.htmx:
        return render(request, "monitoring/_drift.html", drift_context(environment))
    return redirect_after_post(request, page)


@guarded("rollout.request_change")
def adopt(request, public_id):
    """Make the value found in KV the desired config."""
    return _decide(request, public_id, drift.plan_adopt, drift.adopt_external)


@guarded("rollout.request_change")
def overwrite(request, public_id):
    """Write the desired config to KV again over the value found there."""
    return _decide(request, public_id, drift.plan_overwrite, drift.overwrite_external)
