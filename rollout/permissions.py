"""Who may change what, checked on the server, and the one path every refusal takes.

The permission of an act is checked by the act's service (``require``, in
``rollout/services/controls.py`` and the other services), not by its caller: the web view, an API
endpoint, a command or a chat button all reach the same check and cannot forget it. An automatic
act (an alert rule, the preview suite, the late-write guard) names itself with ``system=`` instead
of a person and is allowed by design. A refusal calls ``refuse``, which raises ``Refused`` (a
``PermissionDenied`` saying what was needed and about which environment or object).

Each refusal is written to the audit trail exactly once, by one rule:

- **A web request** (the service was given ``request``): ``RefusalAuditMiddleware`` (registered
  in ``MIDDLEWARE``; a system check makes sure it stays there) records it when the exception leaves
  the view. A request raises at most one exception out of its view, so the refusal is recorded
  once however many helpers it passed through; a bare ``PermissionDenied`` — Django's
  ``permission_required``, the admin, a check written tomorrow — is recorded too; and the view
  has unwound, so the entry is not written inside a transaction the refusal rolls back.
- **No request** (an API, a command, a task calling the service directly): ``refuse`` records it
  itself before raising, because no middleware will. A service checks permission before it opens
  a transaction, so that entry is never rolled back with the refused act.

Only state-changing requests (anything but GET, HEAD, OPTIONS, TRACE) by a logged-in person are
recorded. A refused read is a 403 and a log line, not an audit entry: an open page whose viewer
lost their role polls every few seconds, and the audit trail can never be pruned. An anonymous
request never reaches a permission check (it is sent to log in).
"""

import logging
from functools import wraps
from typing import NoReturn

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class Refused(PermissionDenied):
    """A refusal with what it was about; ``str()`` is the message the person sees."""

    def __init__(self, message: str, *, needs: str = "", environment=None, obj=None):
        super().__init__(message)
        self.needs = needs
        self.environment = environment
        self.obj = obj


def refuse(
    message: str, *, needs: str = "", environment=None, obj=None, actor=None, request=None
) -> NoReturn:
    """Refuse an act: 403 for a web request, and one ``permission.denied`` audit entry naming
    the actor, what was needed and why. Given ``actor`` and no ``request`` (a caller outside the
    web), the entry is written here; otherwise the middleware writes it (see the docstring)."""
    refused = Refused(message, needs=needs, environment=environment, obj=obj)
    if request is None and actor is not None:
        _record(actor, refused, detail=_why(refused), request=None)
    raise refused


def require(actor, permission: str, *, system: str = "", environment=None, obj=None, request=None):
    """The permission check of a service: ``actor`` must hold ``permission``, or the act is
    refused. An automatic act names itself with ``system`` and no actor, and is allowed."""
    if actor is None:
        if not system:
            raise ValueError("an act needs a person or a system name")
        return
    if not actor.has_perm(permission):
        refuse(
            _("You do not have the permission %(permission)s.") % {"permission": permission},
            needs=permission,
            environment=environment,
            obj=obj,
            actor=actor,
            request=request,
        )


def guarded(permission: str):
    """POST only, logged in, and ``permission`` checked on the server before anything is read.

    The control's service checks the same permission again (for callers without a page: the
    API, the CLI, chat); the page checks first so that a person without the right gets 403,
    not a form error, whatever they posted."""

    def decorator(view):
        @wraps(view)
        @require_POST
        @login_required
        def wrapper(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                refuse(
                    _("You do not have the permission %(permission)s.")
                    % {"permission": permission},
                    needs=permission,
                    environment=_environment_named_by(kwargs),
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def shown_to(permission: str):
    """GET only, logged in, and ``permission`` (403 without it): every page that only reads.

    The reading counterpart of ``guarded``."""

    def decorator(view):
        allowed = permission_required(permission, raise_exception=True)(view)
        return require_GET(login_required(allowed))

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
    user = getattr(request, "user", None)
    if request.method in SAFE_METHODS or user is None or not user.is_authenticated:
        log.info("refused %s %s: %s", request.method, request.path, exception)
        return
    detail = f"{request.method} {request.path} {_why(exception)}"
    route = getattr(request, "resolver_match", None)
    if route is not None and route.view_name:
        detail += f" (route {route.view_name})"
    _record(user, exception, detail=detail, request=request)


def _why(exception: PermissionDenied) -> str:
    needs = getattr(exception, "needs", "")
    why = str(exception) or "permission denied"
    return f"needs {needs}: {why}" if needs else f"refused: {why}"


def _record(actor, exception: PermissionDenied, *, detail: str, request) -> None:
    from .models import AuditEntry
    from .services import audit

    try:
        audit.record(
            action="permission.denied",
            actor=actor,
            environment=getattr(exception, "environment", None),
            obj=getattr(exception, "obj", None),
            outcome=AuditEntry.Outcome.REFUSED,
            detail=detail,
            request=request,
        )
    except DatabaseError:
        # The person still gets their 403; the missing entry is in the log.
        log.exception("could not audit the refusal of %s: %s", actor, detail)


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
