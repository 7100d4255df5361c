"""Company login: OpenID Connect with mozilla-django-oidc (docs/security.md, "Company login").

The library does the authorization code flow with PKCE (S256), ``state`` and ``nonce``, the
code exchange, the ID token's signature against the provider's published keys, and the
userinfo call. This module adds what it leaves to us:

- **discovery**: the endpoints come from the provider's discovery document
  (``OIDC_DISCOVERY_URL``), read when a sign-in needs them and kept for an hour;
- **the ID token's issuer, audience and expiry**: the library checks the signature and nonce,
  but not that the token was issued by our provider, for us, and is still valid;
- **who the person is**: the provider's issuer and subject (``CompanyAccount``), and their
  roles from their groups, in ``rollout.services.people``;
- **the provider's sign-out** (``provider_logout_url``).

A sign-in that goes wrong raises ``SignInFailed`` with what to tell the person; the callback
view (``rollout/views/auth.py``) shows it, audits it, and starts no session.
"""

from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

DISCOVERY_CACHE_SECONDS = 3600
# Clocks differ a little between the provider and us.
CLOCK_SKEW_SECONDS = 60
REQUIRED_ENDPOINTS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class SignInFailed(Exception):
    """A company sign-in that did not succeed: ``reason`` is shown to the person and audited;
    ``status`` is the HTTP status of the page; ``outcome`` is the audit outcome (refused: the
    answer was not acceptable; failed: the provider could not be used)."""

    def __init__(self, reason: str, *, status: int = 400, outcome: str = "refused", who=""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.outcome = outcome
        # The person, when the provider said who it was (for the audit trail).
        self.who = who


def provider_unavailable(exc: requests.RequestException) -> SignInFailed:
    """The words and status for a provider that could not be asked."""
    if isinstance(exc, requests.Timeout):
        return SignInFailed(
            _("The company sign-in did not answer within %(OIDC_TIMEOUT)s seconds.")
            % {"OIDC_TIMEOUT": format(settings.OIDC_TIMEOUT, "g")},
            status=504,
            outcome="failed",
        )
    if isinstance(exc, requests.ConnectionError):
        return SignInFailed(
            _("The company sign-in cannot be reached."), status=502, outcome="failed"
        )
    response = getattr(exc, "response", None)
    if response is not None and 400 <= response.status_code < 500:
        try:
            error = response.json().get("error", "")
        except ValueError:
            error = ""
        if error == "invalid_client":
            return SignInFailed(
                _(
                    "The company sign-in does not accept this dashboard's client id or "
                    "secret (invalid_client)."
                ),
                status=502,
                outcome="failed",
            )
        return SignInFailed(
            _(
                "The company sign-in refused the sign-in code: it was already used, "
                "has expired or belongs to another sign-in (%(status_code)s)."
            )
            % {"status_code": error or f"HTTP {response.status_code}"},
            status=400,
        )
    status = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
    return SignInFailed(
        _("The company sign-in answered with an error (%(status)s).") % {"status": status},
        status=502,
        outcome="failed",
    )


def enabled() -> bool:
    return bool(settings.OIDC_DISCOVERY_URL)


def discovery() -> dict:
    """The provider's discovery document (issuer and endpoints)."""
    key = f"company-login:discovery:{settings.OIDC_DISCOVERY_URL}"
    document = cache.get(key)
    if document is None:
        try:
            # requests, as the library uses it for every other call to the provider.
            response = requests.get(settings.OIDC_DISCOVERY_URL, timeout=settings.OIDC_TIMEOUT)
            document = response.json() if response.status_code == 200 else None
        except requests.RequestException as exc:
            raise provider_unavailable(exc) from exc
        if document is None:
            raise SignInFailed(
                _(
                    "The company sign-in's discovery document could not be read (HTTP "
                    "%(status_code)s from %(OIDC_DISCOVERY_URL)s)."
                )
                % {
                    "status_code": response.status_code,
                    "OIDC_DISCOVERY_URL": settings.OIDC_DISCOVERY_URL,
                },
                status=502,
                outcome="failed",
            )
        missing = [
            name
            for name in REQUIRED_ENDPOINTS
            if not isinstance(document, dict) or not document.get(name)
        ]
        if missing:
            raise SignInFailed(
                _("The company sign-in's discovery document lacks %(missing)s.")
                % {"missing": ", ".join(missing)},
                status=502,
                outcome="failed",
            )
        cache.set(key, document, DISCOVERY_CACHE_SECONDS)
    return document


class CompanyLoginBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with the provider's endpoints from discovery, the ID token
    checked in full, and the person found or created by ``rollout.services.people``.

    Django loads the backend of a session's user on every request, so nothing here may ask the
    provider before a sign-in needs it: the endpoints are properties, not read at start."""

    def __init__(self, *args, **kwargs):
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: discovery()["token_endpoint"])
    OIDC_OP_USER_ENDPOINT = property(lambda self: discovery().get("userinfo_endpoint"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: discovery()["jwks_uri"])
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = property(lambda self: settings.OIDC_RP_SIGN_ALGO)
    OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            raise provider_unavailable(exc) from exc

    def _verify_jws(self, payload, key):
        """The signature, and that the token is from our provider, for us, and current."""
        try:
            algorithm = jwt.get_unverified_header(payload).get("alg")
            if algorithm != self.OIDC_RP_SIGN_ALGO:
                raise SignInFailed(
                    _("The ID token is signed with %(algorithm)s, not %(OIDC_RP_SIGN_ALGO)s.")
                    % {"algorithm": repr(algorithm), "OIDC_RP_SIGN_ALGO": self.OIDC_RP_SIGN_ALGO},
                    status=403,
                )
            return jwt.decode(
                payload,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=discovery()["issuer"],
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise SignInFailed(_("The ID token has expired."), status=403) from exc
        except jwt.InvalidIssuerError as exc:
            raise SignInFailed(
                _("The ID token was not issued by %(issuer)s.") % {"issuer": discovery()["issuer"]},
                status=403,
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise SignInFailed(
                _("The ID token was issued for another client."), status=403
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise SignInFailed(
                _("The ID token's signature does not match the provider's published keys."),
                status=403,
            ) from exc
        except jwt.PyJWTError as exc:
            raise SignInFailed(
                _("The ID token is not valid: %(exc)s.") % {"exc": exc}, status=403
            ) from exc

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims with the userinfo endpoint's over them: some providers name the
        groups only in the token (Entra ID), others only at the endpoint."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload)
            if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
                raise SignInFailed(_("The provider's userinfo is about someone else."), status=403)
            claims.update(userinfo)
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        from .services import people  # which imports SignInFailed from here

        claims = self.get_userinfo(access_token, id_token, payload)
        return people.company_sign_in(
            issuer=discovery()["issuer"], claims=claims, request=self.request
        )

    # Permissions come from the role groups, through the password backend (ModelBackend or its
    # cached form); answering here as well would read them a second time.
    def get_user_permissions(self, user_obj, obj=None):
        return set()

    def get_group_permissions(self, user_obj, obj=None):
        return set()

    def get_all_permissions(self, user_obj, obj=None):
        return set()

    # Django's, not the library's: a user switched off here (inactive) keeps no session.
    get_user = ModelBackend.get_user


def provider_logout_url(request) -> str:
    """Where signing out ends: the provider's end-session page when this is a company sign-in
    and the provider has one (it then sends the person back to our log-in page), else our
    log-in page. A provider that cannot be asked now ends the dashboard session only."""
    local = resolve_url(settings.LOGOUT_REDIRECT_URL)
    id_token = request.session.get("oidc_id_token")
    if not id_token or not enabled():
        return local
    try:
        endpoint = discovery().get("end_session_endpoint")
    except SignInFailed:
        return local
    if not endpoint:
        return local
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
