"""How a POST answers, the same for every page: with htmx and without it.

An htmx request follows a 302 by itself and swaps the page it lands on into the element that
asked, so a page ends up nested inside a form. It is told to navigate instead with
``HX-Redirect`` on a 200 (django-htmx's ``HttpResponseClientRedirect``). A browser without
JavaScript posts the form itself and gets a plain redirect, or a whole page around the same
fragment htmx would have swapped in (one template either way, so the two never drift).

Pages and fragments of every app use these; the module needs nothing from any app.
"""

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django_htmx.http import HttpResponseClientRedirect


def redirect_after_post(request, url: str) -> HttpResponse:
    """Send the person to ``url`` after a POST that did what it was asked."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def fragment_or_page(request, template: str, context: dict, *, page: str, status: int = 200):
    """Answer a POST with the fragment ``template`` for htmx to swap in.

    Without htmx: when it succeeded (a ``success`` message in the context) back to ``page``,
    the page the fragment lives on, with the message shown there; otherwise (a confirmation
    step, an invalid form, a refusal) a whole page around the fragment, with its status.
    """
    if request.htmx:
        return render(request, template, context, status=status)
    if status == 200 and context.get("success"):
        messages.success(request, context["success"])
        return HttpResponseRedirect(page)
    return render(
        request,
        "fragment_page.html",
        {**context, "fragment_template": template, "page_url": page},
        status=status,
    )


def confirm(request, *, form, description, page, target="controls", danger=False, note=""):
    """The confirmation step of a control: ``description`` names what the confirmed post of the
    same ``form`` to this URL will do; it takes the place of the card with the id ``target``.

    It stands with and without htmx, so htmx asks no question of its own (no ``hx-confirm``).
    """
    return fragment_or_page(
        request,
        "rollout/_confirm.html",
        {
            "action_url": request.path,
            "cancel_url": page,
            "form": form,
            "description": description,
            "target": target,
            "danger": danger,
            "note": note,
        },
        page=page,
    )
