from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RolloutConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rollout"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
        from .roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="rollout.ensure_roles")
