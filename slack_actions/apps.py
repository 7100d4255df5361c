from django.apps import AppConfig


class SlackActionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "slack_actions"
    verbose_name = "Acting from Slack"
