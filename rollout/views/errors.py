"""Pages for a request Django refuses before a view can read it (``handler400``).

A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, or a form with more fields or files than allowed,
would otherwise get a bare "Bad Request (400)": here it gets what was too large and the limit,
as a page for a browser and as one short line for htmx or a JSON client. Nothing was read from
the request, so nothing was written.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views import defaults


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        status, title = 413, "What you sent is too large"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        sent = _content_length(request)
        message = (
            f"The request body{f' ({sent:,} bytes)' if sent else ''} is over the limit of"
            f" {limit:,} bytes ({limit / 1024 / 1024:.1f} MB). Shorten the text and send it"
            " again: nothing was saved."
        )
    elif isinstance(exception, TooManyFieldsSent):
        status, title = 400, "Too many fields"
        message = (
            f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields, the"
            " limit. Nothing was saved."
        )
    elif isinstance(exception, TooManyFilesSent):
        status, title = 400, "Too many files"
        message = (
            f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files, the"
            " limit. Nothing was saved."
        )
    else:
        return defaults.bad_request(request, exception)
    if _wants_short_answer(request):
        return HttpResponse(f"{message}\n", status=status, content_type="text/plain; charset=utf-8")
    # Rendered without the request: its body cannot be read again.
    body = render_to_string("request_refused.html", {"title": title, "message": message})
    return HttpResponse(body, status=status)


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None


def _wants_short_answer(request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.headers.get("HX-Request") == "true" or (
        "application/json" in accept and "text/html" not in accept
    )
