from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self):
        # Imported here, not at the top: ready() is the first moment the models may be imported.
        from rollout.services import attention as overview_attention
        from rollout.signals import observation_wanted

        from . import (
            attention,
            checks,  # noqa: F401 - registers the system checks
        )
        from .tasks import queue_observation

        observation_wanted.connect(queue_observation, dispatch_uid="monitoring.queue_observation")
        overview_attention.look_with("monitoring", attention.needs)
