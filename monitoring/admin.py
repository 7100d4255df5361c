from django.contrib import admin

from .models import CohortSample, DriftState, HealthCheck, HourlySummary

# --- Health checks, cohort samples, drift: read-only, the rows are records ---------------------


class _ReadOnly(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HealthCheck)
class HealthCheckAdmin(_ReadOnly):
    list_display = ["checked_at", "environment", "verdict", "reason", "status_code", "latency_ms"]
    list_filter = ["verdict", "environment"]


@admin.register(CohortSample)
class CohortSampleAdmin(_ReadOnly):
    list_display = ["created_at", "environment", "state", "verdict", "native", "proxy", "failed"]
    list_filter = ["state", "verdict", "trigger", "environment"]


@admin.register(DriftState)
class DriftStateAdmin(_ReadOnly):
    list_display = ["environment", "kv_state", "edge_state", "checked_at", "resolution"]


@admin.register(HourlySummary)
class HourlySummaryAdmin(_ReadOnly):
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
