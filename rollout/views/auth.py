"""Log-in: local passwords (counted and locked out by django-axes, ``rollout/lockout.py``; off
for all but break-glass accounts when ``LOCAL_PASSWORD_LOGIN`` is false, ``rollout/break_glass.py``)
and the company login (OpenID Connect, ``rollout/company_login.py``)."""

import logging
import math
import time

import jwt
from axes.helpers import get_client_username
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .. import company_login
from ..break_glass import is_break_glass
from ..company_login import SignInFailed
from ..lockout import locked_until
from ..middleware import COMPANY_SESSION_UNTIL
from ..services import people

log = logging.getLogger(__name__)


def _ways_in() -> dict:
    """What the log-in page offers: the company login, and passwords for all or break-glass."""
    return {
        "company_login": company_login.enabled(),
        "local_passwords": settings.LOCAL_PASSWORD_LOGIN,
    }


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **_ways_in()}

    def form_valid(self, form):
        response = super().form_valid(form)
        if is_break_glass(form.get_user().get_username()):
            people.break_glass_signed_in(user=form.get_user(), request=self.request)
        return response


def locked_out(request, original_response=None, credentials=None):
    """The log-in page with what happened and how long it lasts (axes' ``AXES_LOCKOUT_CALLABLE``,
    for our log-in and the admin's)."""
    until = locked_until(request, credentials)
    seconds = (until - timezone.now()).total_seconds() if until else 0
    minutes = max(1, math.ceil(seconds / 60))
    message = (
        "Too many failed log-ins: this account is locked from your address for"
        f" {minutes} more minute{'s' if minutes != 1 else ''}. Log-ins from other addresses"
        " are not affected, and an administrator can lift the lock earlier."
    )
    username = get_client_username(request, credentials) or ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "lockout": message,
        **_ways_in(),
    }
    return render(request, "registration/login.html", context, status=429)


def sign_in_failed(request, failure: SignInFailed):
    """The page for a company sign-in that did not succeed: what went wrong and what to do.
    Audited; no session is started (a person with no role loses the one they had)."""
    people.sign_in_failed(failure=failure, request=request)
    if isinstance(failure, people.NoRole):
        logout(request)
    context = {
        "failure": failure,
        "no_role": isinstance(failure, people.NoRole),
        **_ways_in(),
        "break_glass": bool(settings.BREAK_GLASS_ACCOUNTS),
    }
    return render(request, "registration/company_login_failed.html", context, status=failure.status)


class CompanySignInView(OIDCAuthenticationRequestView):
    """Sends the person to the provider, with PKCE, state and nonce (the library's), to the
    authorization endpoint the provider's discovery document names."""

    def __init__(self, **kwargs):
        # Not the library's: it reads the endpoint from a setting; ours comes from discovery.
        View.__init__(self, **kwargs)

    def get(self, request):
        if not company_login.enabled():
            raise Http404("company login is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = company_login.discovery()["authorization_endpoint"]
        except SignInFailed as failure:
            return sign_in_failed(request, failure)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class CompanyCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the person back: the library checks the state, exchanges the
    code (with the PKCE verifier) and checks the ID token; every way this can fail ends on
    ``sign_in_failed``, never in a 500 and never in a session."""

    def get(self, request):
        if not company_login.enabled():
            raise Http404("company login is not configured")
        self.failure = _refused_before_exchange(request)
        if self.failure and not request.GET.get("error"):
            return sign_in_failed(request, self.failure)
        try:
            return super().get(request)
        except SignInFailed as failure:
            return sign_in_failed(request, failure)
        except (SuspiciousOperation, jwt.PyJWTError) as exc:
            reason = f"The company sign-in's answer could not be verified: {exc}"
            return sign_in_failed(request, SignInFailed(reason, status=403))
        except (KeyError, TypeError, ValueError) as exc:
            log.exception("company sign-in: an answer of the provider was not understood")
            reason = f"The company sign-in's answer was not understood ({type(exc).__name__})."
            return sign_in_failed(request, SignInFailed(reason, status=502, outcome="failed"))

    def login_failure(self):
        return sign_in_failed(
            self.request,
            self.failure or SignInFailed(_("The company sign-in did not sign you in.")),
        )

    def login_success(self):
        response = super().login_success()
        self.request.session[COMPANY_SESSION_UNTIL] = (
            time.time() + settings.OIDC_SESSION_MAX_AGE_SECONDS
        )
        people.signed_in(user=self.user, request=self.request)
        return response


def _refused_before_exchange(request) -> SignInFailed | None:
    """What is wrong with the provider's answer before the code is exchanged, if anything."""
    if error := request.GET.get("error"):
        description = request.GET.get("error_description", "")
        return SignInFailed(
            f"The company sign-in did not sign you in: {error}"
            + (f" ({description[:300]})" if description else "")
            + "."
        )
    code, state = request.GET.get("code"), request.GET.get("state")
    if not code or not state:
        return SignInFailed(_("The company sign-in's answer lacks its code or state. Start again."))
    if state not in request.session.get("oidc_states", {}):
        return SignInFailed(
            _(
                "This sign-in answer does not belong to a sign-in started in this "
                "browser, or it was used already. Start again."
            )
        )
    return None
