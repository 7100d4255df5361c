import os

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.translation import gettext as _

# Read no more: one observation (OBSERVE_INTERVAL_SECONDS) replaced the separate schedules.
RETIRED_INTERVALS = ("HEALTH_CHECK_INTERVAL_SECONDS", "DRIFT_CHECK_INTERVAL_SECONDS")


@register()
def monitoring_settings(app_configs, **kwargs):
    """Configuration mistakes that would otherwise only show as odd samples at run time."""
    errors = []
    by_environment = settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT
    if not _header_map(by_environment, nested=True):
        errors.append(
            Error(
                _(
                    "EDGE_PROBE_HEADERS_BY_ENVIRONMENT must be a JSON object of "
                    '"service/environment" keys, each an object of header names to string '
                    "values"
                ),
                id="monitoring.E001",
            )
        )
    if not _header_map(settings.EDGE_PROBE_HEADERS, nested=False):
        errors.append(
            Error(
                _("EDGE_PROBE_HEADERS must be a JSON object of header names to string values"),
                id="monitoring.E002",
            )
        )
    if settings.COHORT_SAMPLE_SIZE < 1 or settings.COHORT_SAMPLE_CONCURRENCY < 1:
        errors.append(
            Error(
                _("COHORT_SAMPLE_SIZE and COHORT_SAMPLE_CONCURRENCY must be at least 1"),
                id="monitoring.E003",
            )
        )
    if not 0 < settings.COHORT_SAMPLE_ALPHA < 0.5:
        errors.append(
            Error(_("COHORT_SAMPLE_ALPHA must be above 0 and below 0.5"), id="monitoring.E004")
        )
    if not 0 <= settings.COHORT_SAMPLE_MAX_FAILED_SHARE <= 1:
        errors.append(
            Error(_("COHORT_SAMPLE_MAX_FAILED_SHARE must be within 0 and 1"), id="monitoring.E005")
        )
    budget, reserved = settings.EDGE_REQUEST_BUDGET, settings.EDGE_REQUEST_BUDGET_RESERVED
    window = settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS
    if budget > 0 and not (0 < reserved < budget and window > 0):
        errors.append(
            Error(
                _(
                    "EDGE_REQUEST_BUDGET_RESERVED must be at least 1 and below "
                    "EDGE_REQUEST_BUDGET, and EDGE_REQUEST_BUDGET_WINDOW_SECONDS above 0 "
                    "(or EDGE_REQUEST_BUDGET=0)"
                ),
                id="monitoring.E006",
            )
        )
    for name in RETIRED_INTERVALS:
        if name in os.environ:
            errors.append(
                Warning(
                    _(
                        "%(name)s is no longer read: one observation per environment runs "
                        "every OBSERVE_INTERVAL_SECONDS and records the health check and the "
                        "drift state"
                    )
                    % {"name": name},
                    id="monitoring.W001",
                )
            )
    return errors


def _header_map(value, *, nested: bool) -> bool:
    if not isinstance(value, dict):
        return False
    if nested:
        return all(
            isinstance(key, str) and "/" in key and _header_map(headers, nested=False)
            for key, headers in value.items()
        )
    return all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
