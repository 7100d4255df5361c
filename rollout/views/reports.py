"""The report of one phase window and of a whole rollout, as a page and as Markdown."""

from datetime import UTC

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from ..models import Rollout
from ..permissions import shown_to
from ..services import reports
from ..team_language import speaking
from .lookups import VIEW_PERMISSION, phase_run_or_404


@shown_to(VIEW_PERMISSION)
def phase_report(request, public_id):
    run = phase_run_or_404(public_id)
    return render(request, "rollout/decisions/report.html", reports.phase_report(run))


@shown_to(VIEW_PERMISSION)
def phase_report_markdown(request, public_id):
    run = phase_run_or_404(public_id)
    # Shared with the team: its language, and its sentences' times in UTC as the rest of the file.
    with speaking(run.rollout.environment.service), timezone.override(UTC):
        text = reports.markdown(reports.phase_report(run))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    filename = f"GO_NO_GO_{run.rollout.environment.name}_{run.phase.tag}_w{run.window_number}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _rollout(public_id) -> Rollout:
    return get_object_or_404(
        Rollout.objects.select_related("plan__service", "environment__service"), public_id=public_id
    )


@shown_to(VIEW_PERMISSION)
def rollout_report(request, public_id):
    report = reports.rollout_report(_rollout(public_id))
    return render(request, "rollout/decisions/rollout_report.html", report)


@shown_to(VIEW_PERMISSION)
def rollout_report_markdown(request, public_id):
    rollout = _rollout(public_id)
    with speaking(rollout.environment.service), timezone.override(UTC):
        text = reports.rollout_markdown(reports.rollout_report(rollout))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    filename = f"ROLLOUT_{rollout.environment.name}_{rollout.build or rollout.public_id}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
