from django.urls import path

from . import audit_views, decision_views, verification_views, views

app_name = "rollout"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("environments/<uuid:public_id>/", views.environment_detail, name="environment"),
    path("environments/<uuid:public_id>/connect/", views.connect, name="connect"),
    path("environments/<uuid:public_id>/initial/", views.write_initial, name="write_initial"),
    path("environments/<uuid:public_id>/percent/", views.set_percent, name="set_percent"),
    path("environments/<uuid:public_id>/rollback/", views.rollback, name="rollback"),
    path("environments/<uuid:public_id>/emergency/", views.emergency_stop, name="emergency_stop"),
    path(
        "environments/<uuid:public_id>/emergency/lift/",
        views.lift_emergency,
        name="lift_emergency",
    ),
    path("requests/<uuid:public_id>/approve/", views.approve_request, name="approve_request"),
    path("requests/<uuid:public_id>/reject/", views.reject_request, name="reject_request"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("audit/export.<str:fmt>", audit_views.audit_export, name="audit_export"),
    # --- preview suite and production pre-flight (issue 5) ---
    path(
        "environments/<uuid:public_id>/preview-suite/",
        verification_views.preview_suite,
        name="preview_suite",
    ),
    path(
        "environments/<uuid:public_id>/preview-suite/run/",
        verification_views.start_preview_run,
        name="start_preview_run",
    ),
    path("preview-runs/<uuid:public_id>/", verification_views.preview_run, name="preview_run"),
    path(
        "preview-runs/<uuid:public_id>/checks/",
        verification_views.preview_run_checks,
        name="preview_run_checks",
    ),
    path(
        "preview-runs/<uuid:public_id>/report/",
        verification_views.preview_report,
        name="preview_report",
    ),
    path(
        "preview-runs/<uuid:public_id>/report.md",
        verification_views.preview_report_markdown,
        name="preview_report_markdown",
    ),
    path(
        "environments/<uuid:public_id>/preflight/",
        verification_views.preflight_page,
        name="preflight",
    ),
    path(
        "environments/<uuid:public_id>/preflight/attest/<slug:kind>/",
        verification_views.preflight_attest,
        name="preflight_attest",
    ),
    path(
        "environments/<uuid:public_id>/preflight/announce/",
        verification_views.preflight_announce,
        name="preflight_announce",
    ),
    path(
        "environments/<uuid:public_id>/preflight/start/",
        verification_views.start_phase,
        name="start_phase",
    ),
    # --- rollouts, phase windows, decisions (issue 7) ---
    path("rollouts/", decision_views.rollout_history, name="rollouts"),
    path("rollouts/<uuid:public_id>/", decision_views.rollout_detail, name="rollout"),
    path(
        "environments/<uuid:public_id>/rollout/begin/",
        decision_views.begin_rollout,
        name="begin_rollout",
    ),
    path("rollouts/<uuid:public_id>/abort/", decision_views.abort_rollout, name="abort_rollout"),
    path("phases/<uuid:public_id>/", decision_views.phase_run, name="phase_run"),
    path(
        "phases/<uuid:public_id>/evidence-check/",
        decision_views.evidence_check,
        name="evidence_check",
    ),
    path("phases/<uuid:public_id>/attest/", decision_views.attest, name="attest"),
    path("phases/<uuid:public_id>/sign/", decision_views.sign, name="sign"),
    path("phases/<uuid:public_id>/report/", decision_views.phase_report, name="phase_report"),
    path(
        "phases/<uuid:public_id>/report.md",
        decision_views.phase_report_markdown,
        name="phase_report_markdown",
    ),
    path(
        "check-ins/<uuid:public_id>/acknowledge/",
        decision_views.acknowledge_check_in,
        name="acknowledge_check_in",
    ),
    path("decisions/<uuid:public_id>/", decision_views.decision, name="decision"),
    path("decisions/<uuid:public_id>/withdraw/", decision_views.withdraw, name="withdraw"),
    path("post-mortems/<uuid:public_id>/", decision_views.post_mortem, name="post_mortem"),
]
