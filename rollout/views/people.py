"""A person's own settings: the time zone every page shows times in."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ..forms.people import PreferencesForm
from ..middleware import remember_time_zone
from ..models import Preferences
from ..responses import redirect_after_post


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request):
    mine = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)
    form = PreferencesForm(request.POST or None, instance=mine)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            remember_time_zone(request, request.user)
            messages.success(request, "Saved: times are now shown in your chosen zone.")
            return redirect_after_post(request, reverse("rollout:preferences"))
        return render(request, "rollout/preferences.html", {"form": form}, status=422)
    return render(request, "rollout/preferences.html", {"form": form})
