from django.conf import settings
from django.core.checks import Error, register


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


@register()
def refusals_are_audited(app_configs, **kwargs):
    """Refusals are written to the audit trail by a middleware (rollout/permissions.py); without
    it every 403 would leave no trace."""
    if "rollout.permissions.RefusalAuditMiddleware" in settings.MIDDLEWARE:
        return []
    return [
        Error(
            "rollout.permissions.RefusalAuditMiddleware is missing from MIDDLEWARE: refused"
            " requests would not be audited",
            id="rollout.E003",
        )
    ]
