"""Local passwords as break-glass.

With company login in place, ``LOCAL_PASSWORD_LOGIN=false`` turns password log-in off for
everyone except the accounts named in ``BREAK_GLASS_ACCOUNTS``: they stay for when the company's
provider is down during an incident, so the emergency stop remains reachable. Each of their
log-ins is audited and announced in #incidents (``rollout.services.people``).

The refusal happens in an authentication backend, before any password is checked, so that a
refused log-in looks the same whatever the password, counts as a failed log-in for the lockout
(django-axes, ``rollout/lockout.py``) and is audited there.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied


def is_break_glass(username: str) -> bool:
    return username in settings.BREAK_GLASS_ACCOUNTS


def password_log_in_allowed(username: str) -> bool:
    return settings.LOCAL_PASSWORD_LOGIN or is_break_glass(username)


class LocalPasswordPolicyBackend:
    """Stops a password log-in that the policy refuses; lets every other one pass to the next
    backend. Not a password log-in (the company login's callback): not its concern."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if password is None or password_log_in_allowed(username or ""):
            return None
        if request is not None:
            # Read by the lockout handler, which audits the failed log-in with this reason.
            request.refused_because = "password log-in is off; only break-glass accounts may use it"
        raise PermissionDenied
