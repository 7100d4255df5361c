"""The report of one phase window, as a page and as Markdown."""

from django.http import HttpResponse
from django.shortcuts import render

from ..permissions import shown_to
from ..services import reports
from .lookups import VIEW_PERMISSION, phase_run_or_404


@shown_to(VIEW_PERMISSION)
def phase_report(request, public_id):
    run = phase_run_or_404(public_id)
    return render(request, "rollout/decisions/report.html", reports.phase_report(run))


@shown_to(VIEW_PERMISSION)
def phase_report_markdown(request, public_id):
    run = phase_run_or_404(public_id)
    report = reports.phase_report(run)
    response = HttpResponse(reports.markdown(report), content_type="text/markdown; charset=utf-8")
    filename = f"GO_NO_GO_{run.rollout.environment.name}_{run.phase.tag}_w{run.window_number}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
