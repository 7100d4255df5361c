"""The API token pages: a person's own tokens (Your settings → API tokens) and, for an admin,
service tokens. A new token is shown once, in the answer to the POST that made it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rollout.models import ServiceAccount
from rollout.permissions import guarded, shown_to
from rollout.responses import redirect_after_post

from . import tokens
from .forms import ServiceTokenForm, TokenForm
from .models import ApiToken


def _mine(request, **extra) -> dict:
    return {
        "tokens": ApiToken.objects.filter(user=request.user, kind=ApiToken.Kind.PERSONAL),
        "form": TokenForm(),
        **extra,
    }


@require_GET
@login_required
def my_tokens(request):
    return render(request, "api/tokens.html", _mine(request))


@require_GET
@login_required
def my_tokens_panel(request):
    """The list alone, loaded into the "API tokens" card of Your settings."""
    return render(request, "api/_token_list.html", _mine(request))


@require_POST
@login_required
def create_token(request):
    form = TokenForm(request.POST)
    if not form.is_valid():
        return render(request, "api/tokens.html", _mine(request, form=form), status=422)
    issued = tokens.issue_personal(
        person=request.user,
        name=form.cleaned_data["name"],
        days=form.cleaned_data["days"],
        request=request,
    )
    return render(request, "api/tokens.html", _mine(request, issued=issued), status=201)


@require_POST
@login_required
def revoke_token(request, public_id):
    token = get_object_or_404(ApiToken.objects.select_related("user"), public_id=public_id)
    if tokens.revoke(token=token, person=request.user, request=request):
        messages.success(
            request,
            _("Revoked %(name)s (%(prefix)s): it no longer works.")
            % {"name": token.name, "prefix": token.prefix},
        )
    else:
        messages.info(request, _("%(name)s was already revoked.") % {"name": token.name})
    page = "api_tokens:service" if token.kind == ApiToken.Kind.SERVICE else "api_tokens:mine"
    return redirect_after_post(request, reverse(page))


def _service(**extra) -> dict:
    return {
        "accounts": ServiceAccount.objects.select_related("user").prefetch_related(
            "user__groups", "user__api_tokens"
        ),
        "form": ServiceTokenForm(),
        **extra,
    }


@shown_to("rollout.view_serviceaccount")
def service_tokens(request):
    return render(request, "api/service_tokens.html", _service())


@guarded("rollout.add_serviceaccount")
def create_service_token(request):
    form = ServiceTokenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = tokens.issue_service(
                admin=request.user,
                account_name=data["account"],
                role=data["role"],
                name=data["name"],
                days=data["days"],
                description=data["description"],
                request=request,
            )
        except ValueError as problem:
            form.add_error("account", str(problem))
        else:
            return render(request, "api/service_tokens.html", _service(issued=issued), status=201)
    return render(request, "api/service_tokens.html", _service(form=form), status=422)
