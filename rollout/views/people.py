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
from ..services import audit


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request):
    mine = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)
    before = mine.time_zone
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=mine)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            audit.record(
                action="preferences.changed",
                actor=request.user,
                obj=mine,
                before={"time_zone": before},
                after={"time_zone": mine.time_zone},
                request=request,
            )
            remember_time_zone(request, request.user)
            messages.success(request, "Saved: times are now shown in your chosen zone.")
            return redirect_after_post(request, reverse("rollout:preferences"))
        return render(request, "rollout/preferences.html", {"form": form}, status=422)
    return render(request, "rollout/preferences.html", {"form": form})
