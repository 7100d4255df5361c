import logging
import re
import time
import uuid
import zoneinfo

from django.conf import settings
from django.contrib.auth import logout
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation

from config import log_format

from .models import Preferences

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Seconds a client is asked to wait before it tries again while the database is away.
DATABASE_RETRY_AFTER_SECONDS = 5


class RequestIdMiddleware:
    """Give every request an id (or keep a proxy's X-Request-ID) for the audit trail and logs.

    The id is also put where the log formatter finds it, so every line logged while the request
    is handled carries it (config/log_format.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = log_format.current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            log_format.current_request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class DatabaseUnavailableMiddleware:
    """A database that is briefly away (a PostgreSQL restart or failover) answers 503 with a
    short page, or for an HTMX request a small fragment the poller shows in place of its panel,
    with Retry-After; one warning line is logged, never a traceback page.

    Every OperationalError counts: a refused or lost connection, a server starting up or shutting
    down, a deadlock or a cancelled statement are all worth trying again a few seconds later.
    An InterfaceError is a connection Django found closed. Nothing else is touched: any other
    exception still ends in the ordinary 500 with its traceback in the log.

    Only errors raised by a view (or while its template is rendered) reach ``process_exception``;
    the views are where the database is read. Django closes the broken connection at the end of
    the request (``errors_occurred``), and with CONN_HEALTH_CHECKS a persistent connection is
    tested before it is reused, so the first request after the database is back reconnects.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        reason = (str(exception).strip().splitlines() or [""])[0][:300]
        log.warning(
            "database unavailable, answered 503 to %s %s: %s",
            request.method,
            request.path,
            reason or type(exception).__name__,
            extra={"status_code": 503, "error": type(exception).__name__},
        )
        fragment = (
            request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true"
        )
        context = {
            "retry_after": DATABASE_RETRY_AFTER_SECONDS,
            # A read can simply be tried again; an action may or may not have been recorded.
            "action": request.method not in ("GET", "HEAD"),
        }
        # Rendered without the request: no context processor may touch the database.
        template = "_database_unavailable.html" if fragment else "database_unavailable.html"
        body = render_to_string(template, context)
        response = HttpResponse(body, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        # Django's own marker: the handler's "Service Unavailable: <path>" line would be a
        # second, less telling line for the same request.
        response._has_been_logged = True
        if fragment:
            # Into the element that asked, whatever its own swap: a poller that replaces itself
            # (outerHTML) keeps its hx-trigger and so keeps polling, and the next good answer
            # replaces the message.
            response["HX-Reswap"] = "innerHTML"
        return response


class ContentSecurityPolicyMiddleware:
    """Sends settings.CONTENT_SECURITY_POLICY (Django 5.2 has no CSP support of its own).

    With company login, signing out ends at the provider's end-session page: a redirect after
    the sign-out form's post, which the browser checks against ``form-action``, so the
    provider's origin is added there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and not request.path.startswith("/admin/"):
            if settings.OIDC_DISCOVERY_URL:
                origin = "/".join(settings.OIDC_DISCOVERY_URL.split("/")[:3])
                policy = policy.replace("form-action 'self'", f"form-action 'self' {origin}")
            response.setdefault("Content-Security-Policy", policy)
        return response


SESSION_TIME_ZONE = "time_zone"
SESSION_LANGUAGE = "language"


def remember_preferences(request, user) -> tuple[str, str]:
    """Read the zone and the language a person chose ("" for the site's) into their session: at
    log-in and when they save their settings. Every live-fragment poll passes the middleware,
    and a poll inside the fragment's second should cost no query; the session is read anyway.
    Another device keeps what it logged in with until its session ends."""
    chosen = Preferences.objects.filter(user=user).values_list("time_zone", "language").first()
    time_zone, language = chosen or ("", "")
    request.session[SESSION_TIME_ZONE] = time_zone
    request.session[SESSION_LANGUAGE] = language
    return time_zone, language


def remember_at_login(sender, request, user, **kwargs):
    if request is not None:
        remember_preferences(request, user)


def speak_as_chosen(request, time_zone: str, language: str) -> None:
    """Answer ``request`` in the zone and language a person chose; "" keeps the site's zone and
    the language LocaleMiddleware found. Called here for a session, and by the token API once it
    knows whose token came (api/auth.py); this middleware resets both after the answer."""
    if language and language in dict(settings.LANGUAGES):
        translation.activate(language)
        request.LANGUAGE_CODE = language
    timezone.deactivate()
    if time_zone:
        try:
            timezone.activate(zoneinfo.ZoneInfo(time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass  # a zone this system no longer knows: the site's default


class ViewerPreferencesMiddleware:
    """Shows every time in the zone the person chose on their settings page
    (``rollout.Preferences``), else in the site's ``DISPLAY_TIME_ZONE``; and every page in the
    language they chose, else in the one LocaleMiddleware found (the switcher's cookie, else the
    browser's Accept-Language)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            time_zone, language = self._chosen(request)
        except (OperationalError, InterfaceError):
            # The database is away: the view meets the same error and answers 503
            # (DatabaseUnavailableMiddleware sees only what a view raises).
            time_zone, language = "", ""
        speak_as_chosen(request, time_zone, language)
        try:
            response = self.get_response(request)
            # LocaleMiddleware keeps a header already set; it would read the language only after
            # the deactivation below.
            response.headers.setdefault("Content-Language", translation.get_language())
            return response
        finally:
            # A thread serves the next request (or a test) in the site's defaults, not in this
            # person's zone and language.
            timezone.deactivate()
            translation.deactivate()

    @staticmethod
    def _chosen(request) -> tuple[str, str]:
        if not request.user.is_authenticated:
            return "", ""
        time_zone = request.session.get(SESSION_TIME_ZONE)
        language = request.session.get(SESSION_LANGUAGE)
        if time_zone is None or language is None:  # a session from before the setting existed
            return remember_preferences(request, request.user)
        return time_zone, language


# When a company sign-in ends (a Unix time), set at sign-in (rollout/views/auth.py).
COMPANY_SESSION_UNTIL = "company_session_until"


class CompanySessionLimitMiddleware:
    """Ends a company sign-in's session after ``OIDC_SESSION_MAX_AGE_SECONDS``, however active:
    the person signs in again and the provider's groups are read again, so a leaver or a
    removed group loses access by then at the latest. Only sessions of a company sign-in carry
    the deadline; a request without a session (a token) or a password session passes as it is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            until = request.session.get(COMPANY_SESSION_UNTIL)
        except (OperationalError, InterfaceError):
            until = None  # the database is away: the view answers 503
        if until is not None and time.time() >= until:
            log.info("a company sign-in ended after its maximum age; signed out")
            logout(request)
        return self.get_response(request)
