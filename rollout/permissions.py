"""The one server-side guard for every state-changing view, whatever app it lives in."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.views.decorators.http import require_POST

from . import audit
from .models import AuditEntry


def guarded(permission: str):
    """POST only, logged in, and ``permission`` checked on the server. A refusal is audited."""

    def decorator(view):
        @wraps(view)
        @require_POST
        @login_required
        def wrapper(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                audit.record(
                    action="permission.denied",
                    actor=request.user,
                    outcome=AuditEntry.Outcome.REFUSED,
                    detail=f"{request.method} {request.path} needs {permission}",
                    request=request,
                )
                raise PermissionDenied(f"You do not have the permission {permission}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
