from django.conf import settings
from django.core.checks import Error, register


@register()
def monitoring_settings(app_configs, **kwargs):
    """Configuration mistakes that would otherwise only show as odd samples at run time."""
    errors = []
    by_environment = settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT
    if not _header_map(by_environment, nested=True):
        errors.append(
            Error(
                "EDGE_PROBE_HEADERS_BY_ENVIRONMENT must be a JSON object of "
                '"service/environment" keys, each an object of header names to string values',
                id="monitoring.E001",
            )
        )
    if not _header_map(settings.EDGE_PROBE_HEADERS, nested=False):
        errors.append(
            Error(
                "EDGE_PROBE_HEADERS must be a JSON object of header names to string values",
                id="monitoring.E002",
            )
        )
    if settings.COHORT_SAMPLE_SIZE < 1 or settings.COHORT_SAMPLE_CONCURRENCY < 1:
        errors.append(
            Error(
                "COHORT_SAMPLE_SIZE and COHORT_SAMPLE_CONCURRENCY must be at least 1",
                id="monitoring.E003",
            )
        )
    if not 0 < settings.COHORT_SAMPLE_ALPHA < 0.5:
        errors.append(
            Error("COHORT_SAMPLE_ALPHA must be above 0 and below 0.5", id="monitoring.E004")
        )
    if not 0 <= settings.COHORT_SAMPLE_MAX_FAILED_SHARE <= 1:
        errors.append(
            Error("COHORT_SAMPLE_MAX_FAILED_SHARE must be within 0 and 1", id="monitoring.E005")
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
