"""Who may change what, checked on the server, and the one path every refusal takes.

A view (or a service it calls) that refuses a person calls ``refuse``, which raises ``Refused``
(a ``PermissionDenied`` saying what was needed and about which environment or object). The
refusal is written to the audit trail in one place only: ``RefusalAuditMiddleware`` (registered in
``MIDDLEWARE``; a system check makes sure it stays there), when the exception leaves the view.

Why there and not at the point of refusal:

- Once: a request raises at most one exception out of its view, so a refusal is recorded exactly
  once whatever raised it and however many helpers it passed through.
- Nothing slips by: a bare ``PermissionDenied`` — Django's ``permission_required``, the admin, a
  check written tomorrow — is recorded too, with whatever its message says.
- It stays recorded: the view has unwound, so the entry is not written inside a transaction that
  the refusal itself rolls back.

Only state-changing requests (anything but GET, HEAD, OPTIONS, TRACE) by a logged-in person are
recorded. A refused read is a 403 and a log line, not an audit entry: an open page whose viewer
lost their role polls every few seconds, and the audit trail can never be pruned. An anonymous
request never reaches a permission check (it is sent to log in).
"""

import logging
from functools import wraps
from typing import NoReturn

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.views.decorators.http import require_POST

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class Refused(PermissionDenied):
    """A refusal with what it was about; ``str()`` is the message the person sees."""

    def __init__(self, message: str, *, needs: str = "", environment=None, obj=None):
        super().__init__(message)
        self.needs = needs
        self.environment = environment
        self.obj = obj


def refuse(message: str, *, needs: str = "", environment=None, obj=None) -> NoReturn:
    """Refuse the current request: 403, and (for a state-changing request) one
    ``permission.denied`` audit entry naming the actor, the route, what was needed and why."""
    raise Refused(message, needs=needs, environment=environment, obj=obj)


def guarded(permission: str):
    """POST only, logged in, and ``permission`` checked on the server before anything is read."""

    def decorator(view):
        @wraps(view)
        @require_POST
        @login_required
        def wrapper(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                refuse(
                    f"You do not have the permission {permission}.",
                    needs=permission,
                    environment=_environment_named_by(kwargs),
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _environment_named_by(url_kwargs):
    """The environment a URL names, when it names one (``environments/<public_id>/…``)."""
    from .models import Environment

    public_id = url_kwargs.get("public_id")
    if public_id is None:
        return None
    return Environment.objects.filter(public_id=public_id).first()


def record_refusal(request, exception: PermissionDenied) -> None:
    """Write the ``permission.denied`` entry for a refused state-changing request."""
    from .models import AuditEntry
    from .services import audit

    user = getattr(request, "user", None)
    if request.method in SAFE_METHODS or user is None or not user.is_authenticated:
        log.info("refused %s %s: %s", request.method, request.path, exception)
        return
    needs = getattr(exception, "needs", "")
    why = str(exception) or "permission denied"
    detail = f"{request.method} {request.path}"
    detail += f" needs {needs}: {why}" if needs else f" refused: {why}"
    route = getattr(request, "resolver_match", None)
    if route is not None and route.view_name:
        detail += f" (route {route.view_name})"
    try:
        audit.record(
            action="permission.denied",
            actor=user,
            environment=getattr(exception, "environment", None),
            obj=getattr(exception, "obj", None),
            outcome=AuditEntry.Outcome.REFUSED,
            detail=detail,
            request=request,
        )
    except DatabaseError:
        # The person still gets their 403; the missing entry is in the log.
        log.exception("could not audit the refusal of %s %s", request.method, request.path)


class RefusalAuditMiddleware:
    """Audits every refusal (``PermissionDenied``) a view raises; see the module's docstring."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            record_refusal(request, exception)
        return None
