from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RolloutConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rollout"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
        from .auth_backend import connect_signals
        from .roles import ensure_roles

        connect_signals()

        from django.contrib.auth.signals import user_logged_in

        from .middleware import remember_at_login

        user_logged_in.connect(remember_at_login, dispatch_uid="rollout.remember_preferences")

        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="rollout.ensure_roles")
