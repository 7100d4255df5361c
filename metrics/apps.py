from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Logpush ingestion, per-minute cohort buckets, panels and alert rules."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "metrics"

    def ready(self):
        # Imported here, not at the top: ready() is the first moment the models may be imported.
        from rollout.services import attention as overview_attention
        from rollout.services.evidence import measure_with

        from . import attention, evidence

        measure_with(evidence)
        overview_attention.look_with("metrics", attention.needs)
