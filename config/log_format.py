"""How log records are written: one JSON object a line (``LOG_FORMAT=json``) or plain text.

Both formats carry the request id of the request being handled (set by
``rollout.middleware.RequestIdMiddleware``) and, inside a Celery task, the task's name and id, so
a line can be matched to the audit entry, the response header and the other lines of the same
request or task. Both pass every line through :func:`redact`, which removes the configured
secrets wherever they occur — in a message, an extra field or a traceback — so a secret that
slips into an exception message (a webhook URL in an HTTP error, say) still never reaches a log.
"""

import contextvars
import json
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default=""
)

REDACTED = "[redacted]"
# Shorter values are not treated as secrets: replacing a short common string everywhere would
# garble the logs and protect nothing.
MIN_SECRET_LENGTH = 8

# Settings that hold a secret (a string) or a JSON object of secret header values.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "CLOUDFLARE_API_TOKEN",
    "SLACK_DEPLOYMENTS_WEBHOOK_URL",
    "SLACK_INCIDENTS_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "PAGERDUTY_ROUTING_KEY",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "METRICS_PROMETHEUS_TOKEN",
    "EDGE_PROBE_HEADERS",
    "EDGE_PROBE_HEADERS_BY_ENVIRONMENT",
)


def secret_values() -> list[str]:
    """The secrets of the running configuration, longest first (so a URL is replaced whole
    before a token inside it). Read on every call: tests change settings at run time."""
    from django.conf import settings

    if not settings.configured:
        return []
    found = []
    for name in SECRET_SETTINGS:
        found += _strings(getattr(settings, name, ""))
    found.append(settings.DATABASES.get("default", {}).get("PASSWORD") or "")
    found.append(urlsplit(getattr(settings, "CELERY_BROKER_URL", "") or "").password or "")
    secrets = {value for value in found if len(value) >= MIN_SECRET_LENGTH}
    return sorted(secrets, key=len, reverse=True)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def redact(text: str) -> str:
    for secret in secret_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]  # as it appears inside a JSON string
        if escaped != secret and escaped in text:
            text = text.replace(escaped, REDACTED)
    return text


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (in a request) or ``task_name`` and ``task_id`` (in a Celery task)."""

    def filter(self, record):
        # Django logs a response's status after the middleware is done, with the request.
        request_id = getattr(getattr(record, "request", None), "request_id", "")
        request_id = request_id or current_request_id.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        if not request_id and not hasattr(record, "task_id"):
            task = _current_task()
            if task is not None and task.request.id:
                record.task_name = task.name
                record.task_id = task.request.id
        return True


def _current_task():
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    return current_task if current_task else None


class JsonLogFormatter(JsonFormatter):
    """``{"time", "level", "logger", "message", ...}``: the time in UTC (ISO 8601, milliseconds),
    then the request or task context and any ``extra={...}`` fields of the call, then
    ``exc_info`` with the traceback when there is one."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # Django's request object and Celery's copy of a failed task's context (its message
            # and traceback are in the line already) are left out.
            reserved_attrs=[*RESERVED_ATTRS, "request", "data"],
            json_ensure_ascii=False,
        )

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record):
        return redact(super().format(record))


class TextLogFormatter(logging.Formatter):
    """The plain format of the embedded demo, with the request id or task id at the end."""

    def __init__(self, *args, **kwargs):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record):
        text = super().format(record)
        context = getattr(record, "request_id", "") or getattr(record, "task_id", "")
        if context:
            first, newline, rest = text.partition("\n")
            text = f"{first} [{context}]{newline}{rest}"
        return redact(text)


def configured_formatter() -> logging.Formatter:
    """The formatter LOG_FORMAT names in the settings (for processes that log before Django
    configured logging, such as gunicorn's master)."""
    from django.conf import settings

    return JsonLogFormatter() if settings.LOG_FORMAT == "json" else TextLogFormatter()


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover - gunicorn is a dependency
    _GunicornLogger = object


class GunicornLogger(_GunicornLogger):
    """gunicorn's own lines (start, workers, timeouts) in the application's format, so the web
    process writes one format only (gunicorn.conf.py names this class). The access log, when
    one is asked for with --access-logfile, keeps gunicorn's format."""

    def setup(self, cfg):
        super().setup(cfg)
        formatter = configured_formatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
