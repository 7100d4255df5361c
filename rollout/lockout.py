"""Log-in lockout with django-axes: failed log-ins are counted per username *and* client address.

Locking on the pair (``AXES_LOCKOUT_PARAMETERS``) is what keeps the emergency stop reachable: a
flood of made-up names from one address locks only those names there, and someone guessing
DevOps's password from one address does not lock DevOps out from another. The client address is
``rollout.client_address.client_address``, the one the audit trail records.
"""

from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit

from .services import audit


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a log-in whose username and address are locked out.

    Every log-in over HTTP (our log-in page, the admin's) passes its request. A call without one
    (``Client.login`` in tests, a shell) has no client address to count against, so it is left to
    the next backend instead of failing as axes' own backend does.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class AuditedLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler (attempts and lockouts visible in the admin), plus an audit entry
    for each failed log-in and one for each lockout."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        # Set by the backend when the pair was already locked: this attempt was not tried.
        already_locked = request.axes_locked_out
        super().user_login_failed(sender, credentials, request, **kwargs)
        username = (get_client_username(request, credentials) or "")[:150]
        why = (
            "refused: locked out"
            if already_locked
            else getattr(request, "refused_because", "wrong username or password")
        )
        audit.record(
            action="auth.login_failed",
            system="login",
            outcome="refused",
            detail=f"username {username!r}: {why}",
            request=request,
        )
        if request.axes_locked_out and not already_locked:
            until = locked_until(request, credentials)
            audit.record(
                action="auth.locked_out",
                system="login",
                outcome="refused",
                detail=(
                    f"username {username!r} locked out from {request.axes_ip_address} after"
                    f" {get_failure_limit(request, credentials)} failed log-ins,"
                    f" until {until.isoformat(timespec='seconds') if until else 'unknown'}"
                ),
                request=request,
            )


def locked_until(request, credentials) -> datetime | None:
    """When the lock on this request's username and address ends: the failures still counted
    are those newer than the cool-off, so the lock ends a cool-off after the newest failure
    without which fewer than the limit would remain."""
    handler = AuditedLockoutHandler()
    limit = get_failure_limit(request, credentials)
    ends = []
    for attempts in handler.get_user_attempts(request, credentials):
        counted = 0
        for attempt in attempts.order_by("-attempt_time"):
            counted += attempt.failures_since_start
            if counted >= limit:
                ends.append(attempt.attempt_time + get_cool_off(request))
                break
    return max(ends, default=None)
