from django.contrib import admin
from django.db import models

from .models import (
    AuditEntry,
    ConfigChange,
    Decision,
    DesiredConfig,
    Environment,
    Phase,
    PhaseRun,
    Preflight,
    PreviewRun,
    Rollout,
    RolloutPlan,
    Service,
)
from .services import audit


class EnvironmentInline(admin.TabularInline):
    model = Environment
    fields = ["name", "cloudflare_account_id", "kv_namespace_id", "qa_url", "worker_script_name"]
    extra = 0


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "current_build"]
    inlines = [EnvironmentInline]


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["__str__", "cloudflare_account_id", "kv_namespace_id", "qa_url", "connected_at"]
    list_filter = ["name", "service"]
    readonly_fields = [
        "public_id",
        "connected_at",
        "connection_error",
        "last_kv_raw",
        "last_kv_read_at",
        "last_edge_report",
        "last_edge_read_at",
        "live_deployment",
        "deployments_read_at",
        "deployments_error",
    ]
    fields = [
        "service",
        "name",
        "cloudflare_account_id",
        "kv_namespace_id",
        "qa_url",
        "worker_script_name",
        *readonly_fields,
    ]


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0


@admin.register(RolloutPlan)
class RolloutPlanAdmin(admin.ModelAdmin):
    list_display = ["service", "name"]
    fields = ["service", "name", "decision_thresholds"]
    inlines = [PhaseInline]

    def save_model(self, request, obj, form, change):
        stored = RolloutPlan.objects.filter(pk=obj.pk).values_list("decision_thresholds", flat=True)
        before = stored.first() if change else None
        super().save_model(request, obj, form, change)
        if before != obj.decision_thresholds:
            audit.record(
                action="plan.thresholds_changed",
                actor=request.user,
                obj=obj,
                before=before,
                after=obj.decision_thresholds,
                detail=f"decision thresholds of {obj}",
                request=request,
            )


class RecordAdmin(admin.ModelAdmin):
    """Rows the dashboard writes itself, as a record of what happened: shown here, every field
    read-only (those named in ``readonly_fields``, else all), never added or changed. Monitoring
    and metrics use it for their records too."""

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields or [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(RecordAdmin):
    """Desired config, changes and audit entries change only through the dashboard's services,
    so that every change is versioned, queued and audited: not even deleted here."""

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DesiredConfig)
class DesiredConfigAdmin(ReadOnlyAdmin):
    list_display = [
        "environment",
        "version",
        "canary_percent",
        "canary_tag",
        "emergency_proxy",
        "updated_at",
    ]


@admin.register(ConfigChange)
class ConfigChangeAdmin(ReadOnlyAdmin):
    list_display = [
        "environment",
        "version",
        "kind",
        "state",
        "actor_label",
        "requested_at",
        "attempts",
    ]
    list_filter = ["state", "kind", "environment"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor_label", "action", "environment", "outcome"]
    list_filter = ["action", "outcome"]


@admin.register(PreviewRun)
class PreviewRunAdmin(ReadOnlyAdmin):
    """Preview suite runs are recorded by the suite itself."""

    list_display = ["environment", "build", "state", "started_by", "created_at", "finished_at"]
    list_filter = ["state", "environment"]


@admin.register(Preflight)
class PreflightAdmin(ReadOnlyAdmin):
    list_display = ["environment", "phase", "created_at", "started_at", "started_by"]


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "state", "created_at", "finished_at"]
    list_filter = ["state"]


@admin.register(PhaseRun)
class PhaseRunAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "rollout", "state", "in_effect_at", "window_ends_at"]
    list_filter = ["state"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "state", "recommendation", "created_at", "effective_at"]
    list_filter = ["state", "outcome"]
