from django.urls import path

from .views import (
    audit,
    controls,
    environments,
    people,
    phases,
    preflight,
    preview,
    reports,
    signoff,
)

app_name = "rollout"

urlpatterns = [
    path("", environments.overview, name="overview"),
    path("environments/<uuid:public_id>/", environments.environment_detail, name="environment"),
    path("environments/<uuid:public_id>/connect/", environments.connect, name="connect"),
    path(
        "environments/<uuid:public_id>/initial/", environments.write_initial, name="write_initial"
    ),
    path("environments/<uuid:public_id>/percent/", controls.set_percent, name="set_percent"),
    path("environments/<uuid:public_id>/rollback/", controls.rollback, name="rollback"),
    path(
        "environments/<uuid:public_id>/emergency/", controls.emergency_stop, name="emergency_stop"
    ),
    path(
        "environments/<uuid:public_id>/emergency/lift/",
        controls.lift_emergency,
        name="lift_emergency",
    ),
    path("requests/<uuid:public_id>/approve/", controls.approve_request, name="approve_request"),
    path("requests/<uuid:public_id>/reject/", controls.reject_request, name="reject_request"),
    path("preferences/", people.preferences, name="preferences"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.<str:fmt>", audit.audit_export, name="audit_export"),
    path(
        "environments/<uuid:public_id>/preview-suite/",
        preview.preview_suite,
        name="preview_suite",
    ),
    path(
        "environments/<uuid:public_id>/preview-suite/run/",
        preview.start_preview_run,
        name="start_preview_run",
    ),
    path("preview-runs/<uuid:public_id>/", preview.preview_run, name="preview_run"),
    path(
        "preview-runs/<uuid:public_id>/checks/",
        preview.preview_run_checks,
        name="preview_run_checks",
    ),
    path(
        "preview-runs/<uuid:public_id>/report/",
        preview.preview_report,
        name="preview_report",
    ),
    path(
        "preview-runs/<uuid:public_id>/report.md",
        preview.preview_report_markdown,
        name="preview_report_markdown",
    ),
    path(
        "environments/<uuid:public_id>/preflight/",
        preflight.preflight_page,
        name="preflight",
    ),
    path(
        "environments/<uuid:public_id>/preflight/attest/<slug:kind>/",
        preflight.preflight_attest,
        name="preflight_attest",
    ),
    path(
        "environments/<uuid:public_id>/preflight/announce/",
        preflight.preflight_announce,
        name="preflight_announce",
    ),
    path(
        "environments/<uuid:public_id>/preflight/start/",
        phases.start_phase,
        name="start_phase",
    ),
    path("rollouts/", phases.rollout_history, name="rollouts"),
    path("rollouts/<uuid:public_id>/", phases.rollout_detail, name="rollout"),
    path(
        "environments/<uuid:public_id>/rollout/begin/",
        phases.begin_rollout,
        name="begin_rollout",
    ),
    path("rollouts/<uuid:public_id>/abort/", phases.abort_rollout, name="abort_rollout"),
    path("phases/<uuid:public_id>/", phases.phase_run, name="phase_run"),
    path(
        "phases/<uuid:public_id>/evidence-check/",
        phases.evidence_check,
        name="evidence_check",
    ),
    path(
        "build-changes/<uuid:public_id>/answer/",
        phases.answer_build_change,
        name="answer_build_change",
    ),
    path("phases/<uuid:public_id>/attest/", signoff.attest, name="attest"),
    path("phases/<uuid:public_id>/sign/", signoff.sign, name="sign"),
    path("rollouts/<uuid:public_id>/report/", reports.rollout_report, name="rollout_report"),
    path(
        "rollouts/<uuid:public_id>/report.md",
        reports.rollout_report_markdown,
        name="rollout_report_markdown",
    ),
    path("phases/<uuid:public_id>/report/", reports.phase_report, name="phase_report"),
    path(
        "phases/<uuid:public_id>/report.md",
        reports.phase_report_markdown,
        name="phase_report_markdown",
    ),
    path(
        "check-ins/<uuid:public_id>/acknowledge/",
        phases.acknowledge_check_in,
        name="acknowledge_check_in",
    ),
    path("decisions/<uuid:public_id>/", signoff.decision, name="decision"),
    path("decisions/<uuid:public_id>/withdraw/", signoff.withdraw, name="withdraw"),
    path("post-mortems/<uuid:public_id>/", signoff.post_mortem, name="post_mortem"),
]
