from django.contrib import admin

from rollout.admin import RecordAdmin

from .models import AlertEvent, AlertPolicy, AlertRule, LogObject, LogSource


@admin.register(LogSource)
class LogSourceAdmin(admin.ModelAdmin):
    """Where each environment's Logpush files are. R2 credentials stay in the settings."""

    list_display = ["environment", "kind", "bucket", "directory", "enabled", "newest_log_at"]
    list_filter = ["kind", "enabled"]
    readonly_fields = [
        "newest_log_at",
        "last_object_at",
        "last_run_at",
        "last_error",
        "last_error_at",
        "full_listing_at",
        "listed_after",
    ]
    fields = [
        "environment",
        "kind",
        "bucket",
        "directory",
        "http_requests_prefix",
        "trace_events_prefix",
        "enabled",
        *readonly_fields,
    ]


@admin.register(LogObject)
class LogObjectAdmin(RecordAdmin):
    list_display = ["ingested_at", "source", "key", "state", "lines", "bad_lines"]
    list_filter = ["state", "dataset", "source"]
    search_fields = ["key"]


class AlertRuleInline(admin.TabularInline):
    model = AlertRule
    extra = 0
    fields = ["name", "kind", "threshold", "for_minutes", "severity", "enabled", "position"]
    readonly_fields = ["name", "kind"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertPolicy)
class AlertPolicyAdmin(RecordAdmin):
    """Read-only here: changes go through the alert rules page, which audits them."""

    list_display = ["service", "min_requests_per_minute", "auto_emergency_stop", "updated_at"]
    readonly_fields = [
        "service",
        "min_requests_per_minute",
        "auto_emergency_stop",
        "updated_at",
        "updated_by",
    ]
    inlines = [AlertRuleInline]


@admin.register(AlertEvent)
class AlertEventAdmin(RecordAdmin):
    list_display = ["created_at", "environment", "alert", "old_state", "new_state", "minute"]
    list_filter = ["new_state"]
