"""Who a request to /api/v1 acts as: the bearer token's user, checked on every request, and
within the token's request rate.

A personal token acts as its owner (``request.user``), with the owner's permissions as they are
now; a service token as its service account. Every audit entry of that user written while the
request is answered names the token (``acting_through_token``, rollout's ``audit.acting_via``).
"""

import logging
import math
import re
import time
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError, Throttled
from ninja.security import HttpBearer

from rollout.client_address import client_address
from rollout.middleware import speak_as_chosen
from rollout.models import AuditEntry, Preferences
from rollout.permissions import refuse
from rollout.services import audit

from . import tokens
from .models import ApiToken

log = logging.getLogger(__name__)

RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """``"120/min"`` → (120 requests, 60 seconds)."""
    found = RATE.match(value)
    if not found:
        raise ValueError(
            f"API_RATE_LIMIT must be like 120/min (requests per s, min or hour), not {value!r}"
        )
    return int(found.group(1)), PERIODS[found.group(2)]


class TokenAuth(HttpBearer):
    """``Authorization: Bearer rc_…``: 401 (problem+json) for a missing, unknown, revoked or
    expired token or a deactivated account; 429 past the token's rate."""

    def authenticate(self, request, token: str) -> ApiToken:
        try:
            found = tokens.authenticate(token, address=client_address(request))
        except tokens.TokenRefused as refused:
            log.info("API token refused for %s %s: %s", request.method, request.path, refused)
            raise AuthenticationError(message=str(refused)) from refused
        request.user = found.user
        request.api_token = found
        # The answer in the person's chosen language and zone, as their pages; without a choice
        # (or for a service account) in the request's Accept-Language, as LocaleMiddleware found.
        chosen = Preferences.objects.filter(user=found.user).values_list("time_zone", "language")
        speak_as_chosen(request, *(chosen.first() or ("", "")))
        throttle(request, found)
        return found


def acting_through_token(view):
    """Around every route (after its token and input were accepted): the entries its services
    write for the token's user name the token."""

    @wraps(view)
    def acting(request, *args, **kwargs):
        with audit.acting_via(request.user, request.api_token.label):
            return view(request, *args, **kwargs)

    return acting


def via(request) -> str:
    """The token a request came with, as the audit trail names it ("" before it was accepted)."""
    token = getattr(request, "api_token", None)
    return token.label if token else ""


def throttle(request, token: ApiToken) -> None:
    """At most API_RATE_LIMIT requests per token in each fixed window, counted in the shared
    cache (Redis where CACHE_URL names it, so every web process counts together). The first
    refusal of a window is audited; the rest are only answered, so a runaway script cannot
    flood the audit trail."""
    limit, period = parse_rate(settings.API_RATE_LIMIT)
    now = time.time()
    window = int(now // period)
    key = f"api-rate:{token.public_id}:{window}"
    cache.add(key, 0, period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, period + 1)
        count = 1
    if count <= limit:
        return
    wait = max(1, math.ceil((window + 1) * period - now))
    if count == limit + 1:
        audit.record(
            action="api.throttled",
            actor=token.user,
            outcome=AuditEntry.Outcome.REFUSED,
            detail=f"{request.method} {request.path}: more than {settings.API_RATE_LIMIT}",
            request=request,
            via=token.label,
        )
    exc = Throttled(wait=wait)
    exc.message = _("This token made more than %(limit)s requests: try again in %(wait)s s.") % {
        "limit": settings.API_RATE_LIMIT,
        "wait": wait,
    }
    raise exc


def require_read(request, permission: str = "rollout.view_environment") -> None:
    """The reading permission of a route (403 without it). A refused read is logged, not
    audited, as for the pages (rollout/permissions.py)."""
    if not request.user.has_perm(permission):
        refuse(
            _("You do not have the permission %(permission)s.") % {"permission": permission},
            needs=permission,
        )
