import hmac

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from rollout.models import Environment, Service
from rollout.permissions import guarded, refuse, shown_to
from rollout.responses import redirect_after_post
from rollout.services import audit

from . import alerts
from . import panels as panel_data
from .forms import PolicyForm, RuleForm, rule_values

VIEW_PERMISSION = "rollout.view_environment"
EDIT_PERMISSION = "rollout.connect_environment"  # held by the admin role


def _environment(public_id) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("service", "desired"), public_id=public_id
    )


@shown_to(VIEW_PERMISSION)
def environment_metrics(request, public_id):
    environment = _environment(public_id)
    window = panel_data.window_key(request.GET.get("window"))
    context = panel_data.panels_context(environment, window)
    return render(request, "metrics/environment.html", context)


@shown_to(VIEW_PERMISSION)
def panels(request, public_id):
    """The panels fragment. A poll carrying the token of what it shows gets 204 (htmx leaves
    the page as it is) unless something changed."""
    environment = _environment(public_id)
    window = panel_data.window_key(request.GET.get("window"))
    token = request.GET.get("u")
    if token and token == panel_data.change_token(environment, window, timezone.now()):
        return HttpResponse(status=204)
    context = panel_data.panels_context(environment, window)
    return render(request, "metrics/_panels.html", context)


@shown_to(VIEW_PERMISSION)
def figures_json(request, public_id):
    environment = _environment(public_id)
    window = panel_data.window_key(request.GET.get("window"))
    return JsonResponse(panel_data.figures_document(environment, window))


@require_GET
def prometheus(request):
    """For scrapers: a bearer token (METRICS_PROMETHEUS_TOKEN), or a logged-in viewer."""
    token = settings.METRICS_PROMETHEUS_TOKEN
    scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
    authorised = (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )
    if not authorised:
        if not request.user.is_authenticated:
            response = HttpResponse("authentication required\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="rollout-control"'
            return response
        if not request.user.has_perm(VIEW_PERMISSION):
            refuse(
                _("You do not have the permission %(VIEW_PERMISSION)s.")
                % {"VIEW_PERMISSION": VIEW_PERMISSION},
                needs=VIEW_PERMISSION,
            )
    return HttpResponse(
        panel_data.prometheus_text(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


# --- alert rules ---------------------------------------------------------------------------------


def _rule_forms(policy, data=None):
    return [RuleForm(data, rule=rule, initial=rule_values(rule)) for rule in policy.rules.all()]


POLICY_FIELDS = (
    "min_requests_per_minute",
    "auto_emergency_stop",
    "overwhelming_evidence",
    "overwhelming_multiple",
    "overwhelming_min_requests",
)


def _policy_form(policy, data=None):
    return PolicyForm(data, initial={name: getattr(policy, name) for name in POLICY_FIELDS})


@shown_to(VIEW_PERMISSION)
def alert_rules(request, service):
    service = get_object_or_404(Service, name=service)
    policy = alerts.policy_for(service)
    context = {
        "service": service,
        "policy": policy,
        "policy_form": _policy_form(policy),
        "rule_forms": _rule_forms(policy),
        "can_edit": request.user.has_perm(EDIT_PERMISSION),
    }
    return render(request, "metrics/alert_rules.html", context)


@guarded(EDIT_PERMISSION)
def save_alert_rules(request, service):
    service = get_object_or_404(Service, name=service)
    policy = alerts.policy_for(service)
    policy_form = _policy_form(policy, request.POST)
    rule_forms = _rule_forms(policy, request.POST)
    if not policy_form.is_valid() or not all(form.is_valid() for form in rule_forms):
        context = {
            "service": service,
            "policy": policy,
            "policy_form": policy_form,
            "rule_forms": rule_forms,
            "can_edit": True,
        }
        template = "metrics/_alert_rules_form.html" if request.htmx else "metrics/alert_rules.html"
        return render(request, template, context, status=422)
    _save(policy, policy_form, rule_forms, request)
    return redirect_after_post(request, reverse("metrics:alert_rules", args=[service.name]))


def _policy_values(policy) -> dict:
    return {
        **{name: getattr(policy, name) for name in POLICY_FIELDS},
        "rules": {rule.name: rule_values(rule) for rule in policy.rules.all()},
    }


def _save(policy, policy_form, rule_forms, request):
    with transaction.atomic():
        before = _policy_values(policy)
        for name in POLICY_FIELDS:
            setattr(policy, name, policy_form.cleaned_data[name])
        policy.updated_by = request.user
        policy.updated_at = timezone.now()
        policy.save()
        for form in rule_forms:
            for name, value in form.cleaned_data.items():
                setattr(form.rule, name, value)
            form.rule.save(update_fields=list(form.cleaned_data))
        after = _policy_values(policy)
        changed = sorted(
            [key for key in POLICY_FIELDS if before[key] != after[key]]
            + [name for name in after["rules"] if before["rules"].get(name) != after["rules"][name]]
        )
        audit.record(
            action="alerts.settings_changed",
            actor=request.user,
            obj=policy,
            before=before,
            after=after,
            reason=policy_form.cleaned_data["reason"],
            detail=f"{policy.service.name}: " + (", ".join(changed) or "nothing changed"),
            request=request,
        )
