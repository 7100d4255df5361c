"""System checks of the API's settings (config/startup.py runs them before a web process starts)."""

from django.conf import settings
from django.core import checks


@checks.register()
def rate_limit_readable(app_configs, **kwargs):
    from .auth import parse_rate

    try:
        parse_rate(settings.API_RATE_LIMIT)
    except ValueError as problem:
        return [checks.Error(str(problem), id="api.E001")]
    return []
