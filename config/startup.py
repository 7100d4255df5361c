"""Refuse to start with a configuration error.

``manage.py`` runs Django's system checks before its commands, but gunicorn and Celery do not:
a web process or worker would start with, say, the demo's published SECRET_KEY in a secure
deployment. The WSGI module and the worker run the checks here and stop on any error.
"""

from django.core import checks


def configuration_errors() -> list[str]:
    return [
        str(message)
        for message in checks.run_checks()
        if message.is_serious() and not message.is_silenced()
    ]


def refusal(process: str) -> str | None:
    """What to say when ``process`` must not start, or None."""
    errors = configuration_errors()
    if not errors:
        return None
    lines = "\n".join(f"  {error}" for error in errors)
    return f"{process} refuses to start: the configuration has errors.\n{lines}"
