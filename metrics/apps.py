from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Logpush ingestion, per-minute cohort buckets, panels and alert rules."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "metrics"
