"""Log-in. Failed log-ins are counted and locked out by django-axes (``rollout/lockout.py``);
this module shows the lock on the log-in page."""

import math

from axes.helpers import get_client_username
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils import timezone

from ..lockout import locked_until


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


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
    }
    return render(request, "registration/login.html", context, status=429)
