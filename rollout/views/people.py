"""A person's own settings: the time zone every page shows times in, and its language."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ..forms.people import LanguageForm, PreferencesForm
from ..middleware import remember_preferences
from ..models import Preferences
from ..responses import redirect_after_post
from ..services import people


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request):
    mine = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=mine)
    if request.method == "POST":
        if form.is_valid():
            people.change_preferences(person=request.user, request=request, **form.cleaned_data)
            remember_preferences(request, request.user)
            messages.success(request, _("Saved: your settings apply from this page on."))
            return redirect_after_post(request, reverse("rollout:preferences"))
        return render(request, "rollout/preferences.html", {"form": form}, status=422)
    return render(request, "rollout/preferences.html", {"form": form})


@require_POST
def language(request):
    """The header's switcher, also before log-in: a cookie for this browser, and for a person
    signed in their own setting, so every device of theirs follows."""
    form = LanguageForm(request.POST)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("rollout:overview")
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("language", [])))
        return redirect_after_post(request, back)
    chosen = form.cleaned_data["language"]
    if request.user.is_authenticated:
        people.change_preferences(person=request.user, request=request, language=chosen)
        remember_preferences(request, request.user)
    response = redirect_after_post(request, back)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        chosen,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
