"""Fetching the object a URL names, or 404, the permission every page of the app needs, and who
acts when through a page."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ..models import Environment, PhaseRun
from ..services import phases

VIEW_PERMISSION = "rollout.view_environment"


def environment_or_404(public_id) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("service", "desired", "live_deployment"),
        public_id=public_id,
    )


def environment_named_or_404(public_id, name: str) -> Environment:
    environment = get_object_or_404(
        Environment.objects.select_related("service", "desired"), public_id=public_id
    )
    if environment.name != name:
        raise Http404(f"This page is for the {name} environment.")
    return environment


def phase_run_or_404(public_id) -> PhaseRun:
    """The phase window, shown as it is now (a window that has ended reads "decision due")."""
    run = get_object_or_404(
        PhaseRun.objects.select_related("phase", "rollout__plan__service", "rollout__environment"),
        public_id=public_id,
    )
    phases.as_of(timezone.now(), run.rollout, [run])
    return run


def acting(request) -> dict:
    """Who acts, when, and through which request: the keyword arguments a page passes to the
    services of a rollout's life (``phases``, ``signoff``), so each audits the same three."""
    return {"person": request.user, "now": timezone.now(), "request": request}
