from django.contrib import admin

from rollout.admin import RecordAdmin

from .models import CohortSample, DriftState, HealthCheck, HourlySummary

# --- Health checks, cohort samples, drift: read-only, the rows are records ---------------------


@admin.register(HealthCheck)
class HealthCheckAdmin(RecordAdmin):
    list_display = ["checked_at", "environment", "verdict", "reason", "status_code", "latency_ms"]
    list_filter = ["verdict", "environment"]


@admin.register(CohortSample)
class CohortSampleAdmin(RecordAdmin):
    list_display = ["created_at", "environment", "state", "verdict", "native", "proxy", "failed"]
    list_filter = ["state", "verdict", "trigger", "environment"]


@admin.register(DriftState)
class DriftStateAdmin(RecordAdmin):
    list_display = ["environment", "kv_state", "edge_state", "checked_at", "resolution"]


@admin.register(HourlySummary)
class HourlySummaryAdmin(RecordAdmin):
    list_display = [
        "hour",
        "environment",
        "checks",
        "checks_failed",
        "checks_warned",
        "samples",
        "samples_failed",
    ]
    list_filter = ["environment"]
