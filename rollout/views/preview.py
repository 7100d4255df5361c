"""Pages of the preview suite: start a run, its live progress, its report."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseStopPolling

from ..forms.preview import PreviewRunForm
from ..models import Environment, PreviewCheck, PreviewRun
from ..permissions import guarded, shown_to
from ..responses import redirect_after_post
from ..services import preflight
from ..services.deployments import current_build
from ..services.preview import PreviewRefused, start
from ..services.reports import heading
from ..team_language import speaking
from ..templatetags.times import in_words
from .lookups import VIEW_PERMISSION, environment_named_or_404

RUNS_LISTED = 20


def _run(public_id) -> PreviewRun:
    return get_object_or_404(
        PreviewRun.objects.select_related("environment__service", "started_by"),
        public_id=public_id,
    )


def _suite_context(environment: Environment, form=None, **extra) -> dict:
    runs = PreviewRun.objects.filter(environment=environment).select_related("started_by")
    live = current_build(environment) if environment.worker_script_name else None
    last_run = runs.exclude(build="").first()
    initial = {}
    if not environment.worker_script_name:
        # Preview names no Worker script: the last run's build is the best guess.
        initial["build"] = last_run.build if last_run else environment.service.current_build
    return {
        "environment": environment,
        "runs": runs[:RUNS_LISTED],
        "open_run": runs.filter(state__in=PreviewRun.OPEN_STATES).first(),
        "last_run": last_run,
        "live": live,
        "run_form": form
        or PreviewRunForm(initial=initial, reads_version=bool(environment.worker_script_name)),
        **extra,
    }


@shown_to(VIEW_PERMISSION)
def preview_suite(request, public_id):
    """The preview environment's suite: start a run, and the runs so far."""
    environment = environment_named_or_404(public_id, Environment.PREVIEW)
    return render(request, "rollout/preview/suite.html", _suite_context(environment))


@guarded("rollout.request_change")
def start_preview_run(request, public_id):
    environment = environment_named_or_404(public_id, Environment.PREVIEW)
    form = PreviewRunForm(request.POST, reads_version=bool(environment.worker_script_name))
    if not form.is_valid():
        context = _suite_context(environment, form)
        return render(request, "rollout/preview/suite.html", context, status=422)
    try:
        run = start(
            environment=environment,
            person=request.user,
            build=form.cleaned_data["build"],
            build_reason=form.cleaned_data["build_reason"],
            request=request,
        )
    except PreviewRefused as refused:
        context = _suite_context(environment, form, error=str(refused))
        return render(request, "rollout/preview/suite.html", context, status=409)
    return redirect_after_post(request, reverse("rollout:preview_run", args=[run.public_id]))


def _checks_context(run: PreviewRun) -> dict:
    checks = list(run.checks.all())
    for check in checks:
        check.evidence_text = json.dumps(check.evidence, indent=2, ensure_ascii=False)
    token = hashlib.sha256(
        repr((run.state, run.restore_pending, [(c.state, c.duration_ms) for c in checks])).encode()
    ).hexdigest()[:16]
    return {"run": run, "checks": checks, "token": token}


@shown_to(VIEW_PERMISSION)
def preview_run(request, public_id):
    run = _run(public_id)
    return render(request, "rollout/preview/run.html", _checks_context(run))


@shown_to(VIEW_PERMISSION)
def preview_run_checks(request, public_id):
    """The live checks table alone: polled while the run is open; 204 when nothing changed,
    286 (stop polling) with the final table once it finished."""
    run = _run(public_id)
    context = _checks_context(run)
    if run.is_finished:
        content = render(request, "rollout/preview/_checks.html", context).content
        return HttpResponseStopPolling(content)
    if request.GET.get("u") == context["token"]:
        return HttpResponse(status=204)
    return render(request, "rollout/preview/_checks.html", context)


@dataclass
class ReportRow:
    label: str
    status: str  # PASS / FAIL / PENDING
    notes: str


def report_context(run: PreviewRun) -> dict:
    """The report's facts and words in the active language (the page's reader's, or the team's
    for the Markdown file)."""
    checks = list(run.checks.all())
    rows = []
    for check in checks:
        if check.state == PreviewCheck.State.PASSED:
            rows.append(ReportRow(check.get_name_display(), "PASS", check.said))
        elif check.state == PreviewCheck.State.FAILED:
            rows.append(ReportRow(check.get_name_display(), "FAIL", check.said))
        else:
            rows.append(ReportRow(check.get_name_display(), "PENDING", _("not finished")))
    if not run.is_finished:
        decision = "PENDING"
    else:
        decision = "GO" if run.passed else "NO-GO"
    environment = run.environment
    production = environment.service.environments.filter(name=Environment.PRODUCTION).first()
    return {
        "run": run,
        "environment": environment,
        "rows": rows,
        "decision": decision,
        "next_steps": _next_steps(run, decision, production, checks),
        "production": production,
        "tester": run.started_by.get_username() if run.started_by else _("the system"),
        "generated_at": timezone.now(),
    }


def _next_steps(run, decision, production, checks) -> list[str]:
    if decision == "PENDING":
        return [_("Wait for the run to finish.")]
    if decision == "NO-GO":
        steps = [
            _("Fix %(check)s: %(reason)s")
            % {"check": check.get_name_display(), "reason": check.said}
            for check in checks
            if check.state != PreviewCheck.State.PASSED
        ]
        if run.error:
            steps.append(_("The run itself: %(error)s") % {"error": run.error})
        steps += [
            _("Deploy the fix to preview and run the suite again."),
            _("Production stays as it is until a suite of the build to ship passes."),
        ]
        return steps
    phase = preflight.next_phase(production) if production else None
    start = (
        _("start phase %(tag)s (%(percent)s%%)") % {"tag": phase.tag, "percent": phase.percent}
        if phase
        else _("start the next phase")
    )
    return [
        _(
            "Production pre-flight: notify #deployments, review the rollback runbook, confirm "
            "on-call, two or more engineers for the next 4 hours (this result counts for "
            "%(hours)s h)."
        )
        % {"hours": format(settings.PREVIEW_SUITE_MAX_AGE_HOURS, "g")},
        _(
            "On production, %(start)s inside the deploy window (%(window)s); raising the "
            "percent needs a second person's approval."
        )
        % {"start": start, "window": preflight.window_words(timezone.now())},
        _(
            "Watch the check-ins T+0, T+30 min, T+2 h, T+6 h, T+12 h and T+24 h, then decide "
            "GO / HOLD / NO-GO."
        ),
    ]


@shown_to(VIEW_PERMISSION)
def preview_report(request, public_id):
    run = _run(public_id)
    return render(request, "rollout/preview/report.html", report_context(run))


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def report_markdown(run: PreviewRun) -> str:
    """The report as a Markdown file the team shares: in its service's language, times in UTC."""
    with speaking(run.environment.service), timezone.override(UTC):
        return _report_markdown(run)


def _report_markdown(run: PreviewRun) -> str:
    context = report_context(run)
    environment = context["environment"]
    moment = run.finished_at or run.started_at or run.created_at
    marks = {"PASS": _("✅ PASS"), "FAIL": _("❌ FAIL"), "PENDING": _("⏳ PENDING")}
    lines = [
        _("# %(name)s preview suite — test results") % {"name": environment.service.name},
        "",
        _("**Date:** %(moment)s  ") % {"moment": in_words(moment)},
        _("**Environment:** %(name)s (%(url)s)  ")
        % {"name": environment.name, "url": environment.qa_url},
        _("**Build:** %(build)s  ") % {"build": run.build or "—"},
        _("**Tester:** %(tester)s (run %(run)s)")
        % {"tester": context["tester"], "run": run.public_id},
        *heading(_("Test execution")),
        _("| Test | Status | Notes |"),
        "|------|--------|-------|",
    ]
    for row in context["rows"]:
        lines.append(f"| {_cell(row.label)} | {marks[row.status]} | {_cell(row.notes)} |")
    lines += heading(_("Decision"))
    decision = context["decision"]
    if decision == "GO":
        lines.append(_("**GO** — proceed to the production pre-flight."))
        lines += ["", _("All checks passed.")]
    elif decision == "NO-GO":
        lines.append(_("**NO-GO** — do not start a production phase with this build."))
    else:
        lines.append(_("**PENDING** — the run has not finished."))
    if run.error:
        lines += ["", _("Run: %(error)s") % {"error": run.error}]
    if run.restore_outcome:
        lines += [
            "",
            _("Preview after the emergency check: %(restore_note)s.")
            % {"restore_note": run.restore_said},
        ]
    lines += heading(_("Next steps"))
    lines += [f"{number}. {step}" for number, step in enumerate(context["next_steps"], start=1)]
    lines += [
        "",
        _("_Generated by Rollout Control from run %(run)s at %(moment)s._")
        % {"run": run.public_id, "moment": in_words(context["generated_at"])},
        "",
    ]
    return "\n".join(lines)


@shown_to(VIEW_PERMISSION)
def preview_report_markdown(request, public_id):
    return report_download(_run(public_id))


def report_download(run: PreviewRun) -> HttpResponse:
    """The Markdown report as a file: the page's download and the API's."""
    moment = run.finished_at or run.created_at
    response = HttpResponse(report_markdown(run), content_type="text/markdown; charset=utf-8")
    filename = f"preview-report-{run.environment.service.name}-{moment:%Y%m%d-%H%M}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
