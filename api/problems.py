"""Every error of /api/v1 as ``application/problem+json`` (RFC 9457): a status, a short title,
a sentence for a person (``detail``) and, where it helps a program, extra members
(``errors``, ``current_version``). Registered on the API in ``install``."""

import json
import logging

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from rollout.middleware import DATABASE_RETRY_AFTER_SECONDS
from rollout.permissions import record_refusal
from rollout.services import audit
from rollout.services.controls import ConfigConflict, ControlRefused

from .auth import via

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
# In the language of the request (its token's person's choice, else its Accept-Language).
TITLES = {
    400: gettext_lazy("Bad request"),
    401: gettext_lazy("Not authenticated"),
    403: gettext_lazy("Forbidden"),
    404: gettext_lazy("Not found"),
    409: gettext_lazy("Conflict"),
    422: gettext_lazy("Invalid input"),
    429: gettext_lazy("Too many requests"),
    500: gettext_lazy("Server error"),
    503: gettext_lazy("Service unavailable"),
}


class NotFound(HttpError):
    """An object a path names does not exist; the message names it."""

    def __init__(self, message: str):
        super().__init__(404, message)


def problem(status: int, detail: str, *, type_: str = "about:blank", **extra) -> HttpResponse:
    body = {"type": type_, "title": str(TITLES.get(status, _("Error"))), "status": status}
    body["detail"] = detail
    body.update(extra)
    return HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)


@csrf_exempt  # the API takes no cookies: a POST here gets the same 404 as a GET
def unknown_route(request) -> HttpResponse:
    """Any method on a path under /api/v1 that names no route."""
    return problem(
        404, _("There is no API route %(path)s: see /api/v1/docs.") % {"path": request.path}
    )


def _http_error(request, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        return _unauthenticated(request, exc)
    if isinstance(exc, Throttled):
        response = problem(429, str(exc), type_="rate-limited", retry_after=exc.wait)
        response["Retry-After"] = str(exc.wait)
        return response
    if exc.status_code == 400:
        return problem(400, _("The body is not valid JSON."), type_="bad-json")
    return problem(exc.status_code, str(exc))


def _unauthenticated(request, exc: AuthenticationError) -> HttpResponse:
    detail = exc.message
    if detail == "Unauthorized":  # ninja's own: no bearer token was sent
        detail = _("Send an API token: Authorization: Bearer rc_…")
    response = problem(401, detail, type_="unauthenticated")
    response["WWW-Authenticate"] = 'Bearer realm="rollout-control"'
    return response


def _validation_error(request, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field_name(error.get("loc", ())), "message": _message(error)}
        for error in exc.errors
    ]
    sentence = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    return problem(
        422,
        _("The request was not accepted — %(sentence)s.") % {"sentence": sentence},
        errors=errors,
    )


def _field_name(loc) -> str:
    # ninja's locations start with where the value came from and the parameter's name
    # ("body", "payload", "percent"); the field is what follows.
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict) -> str:
    if error.get("type") == "extra_forbidden":
        return _("is not a field of this request")
    if error.get("type") == "missing":
        return _("is required")
    return str(error.get("msg", "is not valid"))


def _not_found(request, exc: Http404) -> HttpResponse:
    return problem(404, str(exc) or _("There is nothing at this address."))


def _forbidden(request, exc: PermissionDenied) -> HttpResponse:
    # The API answers the refusal itself, so RefusalAuditMiddleware never sees it: audited here,
    # once, with the token the request carried (rollout/permissions.py).
    with audit.acting_via(request.user, via(request)):
        record_refusal(request, exc)
    return problem(403, str(exc) or _("You may not do this."), type_="forbidden")


def _refused(request, exc: ControlRefused | ConfigConflict) -> HttpResponse:
    """A control that cannot act in this state (409). The service that refused it audited it
    (``audit.refusals_audited``), as it does for a page or a chat button: nothing to add here."""
    if isinstance(exc, ConfigConflict):
        extra = {}
        if exc.current_version is not None:
            extra["current_version"] = exc.current_version
        return problem(
            409, _("Not applied: %(why)s.") % {"why": exc}, type_="stale-version", **extra
        )
    return problem(409, str(exc), type_="refused")


def _database_away(request, exc: Exception) -> HttpResponse:
    """As for the pages (rollout/middleware.py): try again in a few seconds; a write may or may
    not have been recorded, which its audit entry or the object's state tells."""
    log.warning(
        "database unavailable, answered 503 to %s %s: %s", request.method, request.path, exc
    )
    response = problem(503, _("The database is briefly unavailable: try again in a few seconds."))
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _server_error(request, exc: Exception) -> HttpResponse:
    log.exception("API request %s %s failed", request.method, request.path)
    return problem(500, _("Something went wrong on the server; it is in the log."))


def install(api) -> None:
    api.add_exception_handler(Exception, _server_error)
    api.add_exception_handler(OperationalError, _database_away)
    api.add_exception_handler(InterfaceError, _database_away)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(PermissionDenied, _forbidden)
    api.add_exception_handler(ControlRefused, _refused)
    api.add_exception_handler(ConfigConflict, _refused)
