"""The production pre-flight: the checklist before a production phase starts."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from outbox import notify
from outbox.models import Notification

from ..forms.phases import StartPhaseForm
from ..forms.preflight import AttestationForm
from ..models import (
    Environment,
    PreflightAttestation,
)
from ..permissions import guarded, refuse, shown_to
from ..responses import fragment_or_page
from ..services import preflight
from .lookups import VIEW_PERMISSION, environment_named_or_404

Kind = PreflightAttestation.Kind


def _preflight_context(request, environment, *, create=False, **extra) -> dict:
    now = timezone.now()
    checklist = preflight.evaluate(environment, now=now, create=create)
    desired = checklist.desired
    context = {
        "environment": environment,
        "checklist": checklist,
        "window": checklist.window,
        "slack_configured": notify.channel_configured(Notification.Channel.SLACK_DEPLOYMENTS),
        "runbook_url": settings.ROLLBACK_RUNBOOK_URL,
        "max_age_hours": settings.PREVIEW_SUITE_MAX_AGE_HOURS,
        "attestation_hours": settings.PREFLIGHT_ATTESTATION_MAX_AGE_HOURS,
        "kinds": Kind,
        "preview": environment.service.environments.filter(name=Environment.PREVIEW).first(),
        "start_form": StartPhaseForm(
            initial={
                "expected_version": desired.version if desired else None,
                "tag": checklist.phase.tag if checklist.phase else "",
            }
        ),
    }
    forms = extra.pop("forms", {})
    for item in checklist.items:
        if item.key in ATTEST_PERMISSIONS:
            item.form = forms.get(item.key) or AttestationForm(kind=item.key)
    context.update(extra)
    return context


def render_preflight(request, environment, *, status=200, create=False, **extra):
    context = _preflight_context(request, environment, create=create, **extra)
    return fragment_or_page(
        request,
        "rollout/_preflight.html",
        context,
        page=reverse("rollout:preflight", args=[environment.public_id]),
        status=status,
    )


@shown_to(VIEW_PERMISSION)
def preflight_page(request, public_id):
    environment = environment_named_or_404(public_id, Environment.PRODUCTION)
    context = _preflight_context(request, environment)
    template = "rollout/_preflight.html" if request.htmx else "rollout/preflight.html"
    return render(request, template, context)


ATTEST_PERMISSIONS = {
    Kind.TEAM_NOTIFIED: ("rollout.request_change",),
    Kind.RUNBOOK_REVIEWED: ("rollout.request_change",),
    # DevOps (on call themselves) may confirm the rotation too.
    Kind.ONCALL_CONFIRMED: ("rollout.request_change", "rollout.emergency_stop"),
    Kind.ENGINEERS_AVAILABLE: ("rollout.request_change",),
    Kind.VERSION_SPLIT: ("rollout.request_change",),
}


@require_POST
@login_required
def preflight_attest(request, public_id, kind):
    if kind not in ATTEST_PERMISSIONS:
        raise Http404(_("Unknown checklist item."))
    permissions = ATTEST_PERMISSIONS[kind]
    if not any(request.user.has_perm(permission) for permission in permissions):
        needs = " or ".join(permissions)
        refuse(_("You do not have the permission %(needs)s.") % {"needs": needs}, needs=needs)
    environment = environment_named_or_404(public_id, Environment.PRODUCTION)
    form = AttestationForm(request.POST, kind=kind)
    if not form.is_valid():
        # Said at the top too: the item's form may not be on show in the current state.
        error = next(iter(form.errors.values()))[0]
        return render_preflight(request, environment, status=422, forms={kind: form}, error=error)
    checklist = preflight.evaluate(environment, now=timezone.now(), create=True)
    if checklist.preflight is None:
        return render_preflight(request, environment, status=409, error=checklist.blocker)
    deployment = None
    if kind == Kind.VERSION_SPLIT:
        deployment = environment.live_deployment
        if deployment is None or not deployment.is_split:
            return render_preflight(
                request,
                environment,
                status=409,
                error=_("Production no longer runs a version split: nothing to acknowledge."),
            )
    preflight.attest(
        preflight=checklist.preflight,
        kind=kind,
        person=request.user,
        names=form.cleaned_data["names"],
        note=form.cleaned_data["note"],
        deployment=deployment,
        request=request,
    )
    return render_preflight(
        request,
        environment,
        success=_("Recorded: %(label)s, by %(user)s.")
        % {"label": Kind(kind).label, "user": request.user},
    )


@guarded("rollout.request_change")
def preflight_announce(request, public_id):
    environment = environment_named_or_404(public_id, Environment.PRODUCTION)
    now = timezone.now()
    checklist = preflight.evaluate(environment, now=now, create=True)
    if checklist.preflight is None:
        return render_preflight(request, environment, status=409, error=checklist.blocker)
    if not notify.channel_configured(Notification.Channel.SLACK_DEPLOYMENTS):
        return render_preflight(
            request,
            environment,
            status=409,
            error=_(
                "Slack #deployments is not configured (SLACK_DEPLOYMENTS_WEBHOOK_URL): "
                "tell the team another way and attest it by hand with a note."
            ),
        )
    attestation = preflight.announce(
        checklist=checklist, person=request.user, now=now, request=request
    )
    if attestation is None:
        return render_preflight(
            request, environment, status=409, error=_("The announcement could not be queued.")
        )
    return render_preflight(
        request, environment, success=_("Announcement queued for Slack #deployments.")
    )
