from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.utils.translation import gettext as _


def _lasts_three_calls(name: str, *, id: str) -> list[Error]:
    """A lease held across HTTP calls must last at least three of their timeouts."""
    seconds, timeout = getattr(settings, name), settings.HTTP_TIMEOUT_SECONDS
    if seconds >= 3 * timeout:
        return []
    return [
        Error(
            _(
                "%(name)s (%(seconds)s) must be at least three times "
                "HTTP_TIMEOUT_SECONDS (%(timeout)s)"
            )
            % {"name": name, "seconds": seconds, "timeout": timeout},
            id=id,
        )
    ]


@register()
def kv_writer_settings(app_configs, **kwargs):
    """The KV lease must outlive one attempt's three bounded HTTP calls, or a live writer could
    lose it mid-write and a second writer start beside it."""
    errors = _lasts_three_calls("KV_WRITE_LEASE_SECONDS", id="rollout.E001")
    if not 0 < 3 * settings.KV_LEASE_HEARTBEAT_SECONDS < settings.KV_WRITE_LEASE_SECONDS:
        errors.append(
            Error(
                _(
                    "KV_LEASE_HEARTBEAT_SECONDS (%(KV_LEASE_HEARTBEAT_SECONDS)s) must be "
                    "positive and three beats shorter than KV_WRITE_LEASE_SECONDS "
                    "(%(KV_WRITE_LEASE_SECONDS)s)"
                )
                % {
                    "KV_LEASE_HEARTBEAT_SECONDS": settings.KV_LEASE_HEARTBEAT_SECONDS,
                    "KV_WRITE_LEASE_SECONDS": settings.KV_WRITE_LEASE_SECONDS,
                },
                id="rollout.E003",
            )
        )
    if settings.KV_WRITE_MAX_ATTEMPTS < 1:
        errors.append(Error(_("KV_WRITE_MAX_ATTEMPTS must be at least 1"), id="rollout.E002"))
    return errors


@register()
def preview_suite_settings(app_configs, **kwargs):
    """A preview suite's worker renews its lease between steps that each take up to a few HTTP
    timeouts (a KV write is three calls); a shorter lease would let the sweep take over a live
    run."""
    errors = _lasts_three_calls("PREVIEW_SUITE_LEASE_SECONDS", id="rollout.E501")
    if settings.PREVIEW_SUITE_TIMEOUT_SECONDS <= 0 or settings.PREVIEW_SUITE_MAX_AGE_HOURS <= 0:
        errors.append(
            Error(
                _("PREVIEW_SUITE_TIMEOUT_SECONDS and PREVIEW_SUITE_MAX_AGE_HOURS must be positive"),
                id="rollout.E502",
            )
        )
    return errors


@register()
def audit_key_settings(app_configs, **kwargs):
    """The audit chain's HMAC key: a secure deployment does not start without one, because an
    unkeyed chain can be rewritten by anyone with write access to the database."""
    problems = []
    key, minimum = settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_MIN_LENGTH
    how = (
        'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))" and '
        "set AUDIT_HMAC_KEY, or AUDIT_HMAC_KEY_FILE to a file holding it"
    )
    level, letter = (Error, "E") if settings.SECURE_DEPLOYMENT else (CheckWarning, "W")
    if not key:
        where = (
            f" (AUDIT_HMAC_KEY_FILE {settings.AUDIT_HMAC_KEY_FILE} is missing or empty)"
            if settings.AUDIT_HMAC_KEY_FILE
            else ""
        )
        problems.append(
            level(
                f"No audit key{where}: audit entries are sealed with a plain SHA-256 that anyone "
                "with database access can recompute.",
                hint=how,
                id=f"rollout.{letter}601",
            )
        )
    elif len(key) < minimum:
        problems.append(
            level(
                f"The audit key (AUDIT_HMAC_KEY) is {len(key)} characters; at least {minimum} "
                "are needed.",
                hint=how,
                id=f"rollout.{letter}602",
            )
        )
    if not settings.AUDIT_HMAC_KEY_ID or ":" in settings.AUDIT_HMAC_KEY_ID:
        problems.append(
            Error(_("AUDIT_HMAC_KEY_ID must be set and hold no ':'"), id="rollout.E603")
        )
    if settings.AUDIT_HMAC_KEY_ID in settings.AUDIT_HMAC_OLD_KEYS:
        problems.append(
            Error(
                _(
                    "AUDIT_HMAC_OLD_KEYS names the current key id %(AUDIT_HMAC_KEY_ID)s: "
                    "give the new key a new id"
                )
                % {"AUDIT_HMAC_KEY_ID": repr(settings.AUDIT_HMAC_KEY_ID)},
                id="rollout.E604",
            )
        )
    return problems


@register()
def audit_checkpoint_settings(app_configs, **kwargs):
    """Where the audit chain's head is recorded outside the database: without a target,
    deleting the newest entries goes unnoticed."""
    problems = []
    if settings.AUDIT_CHECKPOINT_BUCKET and not (
        settings.AUDIT_CHECKPOINT_ENDPOINT_URL or settings.R2_ENDPOINT_URL
    ):
        problems.append(
            Error(
                _(
                    "AUDIT_CHECKPOINT_BUCKET is set but no endpoint: set "
                    "AUDIT_CHECKPOINT_ENDPOINT_URL or R2_ENDPOINT_URL"
                ),
                id="rollout.E605",
            )
        )
    if settings.SECURE_DEPLOYMENT and not (
        settings.AUDIT_CHECKPOINT_FILE or settings.AUDIT_CHECKPOINT_BUCKET
    ):
        problems.append(
            CheckWarning(
                _(
                    "No audit checkpoint target: deleting the newest audit entries, or all "
                    "of them, would go unnoticed."
                ),
                hint=_(
                    "set AUDIT_CHECKPOINT_BUCKET (with the R2_* credentials) and/or "
                    "AUDIT_CHECKPOINT_FILE"
                ),
                id="rollout.W606",
            )
        )
    return problems


GENERATE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'


@register(Tags.security)
def secret_key_in_a_secure_deployment(app_configs, **kwargs):
    """Sessions, CSRF tokens and password-reset links are signed with SECRET_KEY; the demo's key
    is published in this repository. An error, not a warning like Django's own security.W009,
    so that a secure deployment does not start with such a key (config/startup.py)."""
    if not settings.SECURE_DEPLOYMENT:
        return []
    key = settings.SECRET_KEY
    if key == settings.EMBEDDED_SECRET_KEY:
        problem = "is unset or is the embedded demo's key, which is published in the repository"
    elif len(key) < 50:
        problem = f"has {len(key)} characters; it needs at least 50"
    elif len(set(key)) < 5:
        problem = f"has only {len(set(key))} different characters; it needs at least 5"
    else:
        return []
    return [
        Error(
            _("SECURE_DEPLOYMENT is true and SECRET_KEY %(problem)s.") % {"problem": problem},
            hint=_("Generate a key with: %(GENERATE_KEY)s") % {"GENERATE_KEY": GENERATE_KEY},
            id="rollout.E600",
        )
    ]


@register()
def refusals_are_audited(app_configs, **kwargs):
    """Refusals are written to the audit trail by a middleware (rollout/permissions.py); without
    it every 403 would leave no trace."""
    if "rollout.permissions.RefusalAuditMiddleware" in settings.MIDDLEWARE:
        return []
    return [
        Error(
            _(
                "rollout.permissions.RefusalAuditMiddleware is missing from "
                "MIDDLEWARE: refused requests would not be audited"
            ),
            id="rollout.E004",
        )
    ]


@register()
def company_login_settings(app_configs, **kwargs):
    """Company login and break-glass: a mapping that names a role that does not exist would
    silently give nobody that role; passwords off with no break-glass account leaves the
    emergency stop out of reach when the provider is down."""
    from .roles import ALL

    problems = []
    if settings.OIDC_DISCOVERY_URL and not (
        settings.OIDC_RP_CLIENT_ID and settings.OIDC_RP_CLIENT_SECRET
    ):
        problems.append(
            Error(
                _("OIDC_DISCOVERY_URL is set but OIDC_CLIENT_ID or OIDC_CLIENT_SECRET is not"),
                id="rollout.E620",
            )
        )
    mapping = settings.OIDC_ROLE_GROUPS
    if not isinstance(mapping, dict) or not all(
        isinstance(groups, list) and all(isinstance(group, str) for group in groups)
        for groups in mapping.values()
    ):
        problems.append(
            Error(
                _('OIDC_ROLE_GROUPS must map roles to lists of groups: {"tech lead": ["…"], …}'),
                id="rollout.E621",
            )
        )
    elif unknown := sorted(set(mapping) - set(ALL)):
        problems.append(
            Error(
                _("OIDC_ROLE_GROUPS names roles that do not exist: %(unknown)s")
                % {"unknown": ", ".join(unknown)},
                hint=_("The roles are: %(ALL)s") % {"ALL": ", ".join(ALL)},
                id="rollout.E622",
            )
        )
    passwords_off_without = [
        (
            settings.BREAK_GLASS_ACCOUNTS,
            "BREAK_GLASS_ACCOUNTS is empty: when the company sign-in is down, nobody can log in"
            " to press the emergency stop",
            "W623",
        ),
        (
            settings.OIDC_DISCOVERY_URL,
            "company login is not configured (OIDC_DISCOVERY_URL): only break-glass accounts"
            " can log in",
            "W624",
        ),
    ]
    for present, why, check in passwords_off_without:
        if not settings.LOCAL_PASSWORD_LOGIN and not present:
            problems.append(
                CheckWarning(
                    _("LOCAL_PASSWORD_LOGIN is off and %(why)s") % {"why": why},
                    id=f"rollout.{check}",
                )
            )
    return problems
