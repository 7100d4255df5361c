from django.apps import AppConfig


class RolloutConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rollout"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
