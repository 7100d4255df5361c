import os
import sys

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rollout_control")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_to_start_on_configuration_errors(sender=None, **kwargs):
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from config.startup import refusal

    # SystemExit: Celery logs any other exception from a signal handler and carries on.
    if why := refusal("The Celery worker" if kwargs.get("signal") is worker_init else "Beat"):
        sys.exit(why)
