from django.conf import settings
from django.core.checks import Error, Tags, register


@register()
def kv_writer_settings(app_configs, **kwargs):
    """The KV lease must outlive one attempt's three bounded HTTP calls, or a live writer could
    lose it mid-write and a second writer start beside it."""
    errors = []
    if settings.KV_WRITE_LEASE_SECONDS < 3 * settings.HTTP_TIMEOUT_SECONDS:
        errors.append(
            Error(
                f"KV_WRITE_LEASE_SECONDS ({settings.KV_WRITE_LEASE_SECONDS}) must be at least"
                f" three times HTTP_TIMEOUT_SECONDS ({settings.HTTP_TIMEOUT_SECONDS})",
                id="rollout.E001",
            )
        )
    if settings.KV_WRITE_MAX_ATTEMPTS < 1:
        errors.append(Error("KV_WRITE_MAX_ATTEMPTS must be at least 1", id="rollout.E002"))
    return errors


@register()
def preview_suite_settings(app_configs, **kwargs):
    """A preview suite's worker renews its lease between steps that each take up to a few HTTP
    timeouts (a KV write is three calls); a shorter lease would let the sweep take over a live
    run. (Issue 5.)"""
    errors = []
    if settings.PREVIEW_SUITE_LEASE_SECONDS < 3 * settings.HTTP_TIMEOUT_SECONDS:
        errors.append(
            Error(
                f"PREVIEW_SUITE_LEASE_SECONDS ({settings.PREVIEW_SUITE_LEASE_SECONDS}) must be at"
                f" least three times HTTP_TIMEOUT_SECONDS ({settings.HTTP_TIMEOUT_SECONDS})",
                id="rollout.E501",
            )
        )
    if settings.PREVIEW_SUITE_TIMEOUT_SECONDS <= 0 or settings.PREVIEW_SUITE_MAX_AGE_HOURS <= 0:
        errors.append(
            Error(
                "PREVIEW_SUITE_TIMEOUT_SECONDS and PREVIEW_SUITE_MAX_AGE_HOURS must be positive",
                id="rollout.E502",
            )
        )
    return errors


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
            f"SECURE_DEPLOYMENT is true and SECRET_KEY {problem}.",
            hint=f"Generate a key with: {GENERATE_KEY}",
            id="rollout.E1401",
        )
    ]
