from django.urls import path

from .routes import object_pages
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

# The pages of one environment, request, preview run, rollout, phase, check-in, decision or
# post-mortem: (kind, rest, view, name), at <kind>/<its public id>/<rest>.
OBJECT_PAGES = [
    ("environments", "", environments.environment_detail, "environment"),
    ("environments", "connect/", environments.connect, "connect"),
    ("environments", "initial/", environments.write_initial, "write_initial"),
    ("environments", "percent/", controls.set_percent, "set_percent"),
    ("environments", "rollback/", controls.rollback, "rollback"),
    ("environments", "emergency/", controls.emergency_stop, "emergency_stop"),
    ("environments", "emergency/lift/", controls.lift_emergency, "lift_emergency"),
    ("environments", "preview-suite/", preview.preview_suite, "preview_suite"),
    ("environments", "preview-suite/run/", preview.start_preview_run, "start_preview_run"),
    ("environments", "preflight/", preflight.preflight_page, "preflight"),
    (
        "environments",
        "preflight/attest/<slug:kind>/",
        preflight.preflight_attest,
        "preflight_attest",
    ),
    ("environments", "preflight/announce/", preflight.preflight_announce, "preflight_announce"),
    ("environments", "preflight/start/", phases.start_phase, "start_phase"),
    ("environments", "rollout/begin/", phases.begin_rollout, "begin_rollout"),
    ("requests", "approve/", controls.approve_request, "approve_request"),
    ("requests", "reject/", controls.reject_request, "reject_request"),
    ("preview-runs", "", preview.preview_run, "preview_run"),
    ("preview-runs", "checks/", preview.preview_run_checks, "preview_run_checks"),
    ("preview-runs", "report/", preview.preview_report, "preview_report"),
    ("preview-runs", "report.md", preview.preview_report_markdown, "preview_report_markdown"),
    ("rollouts", "", phases.rollout_detail, "rollout"),
    ("rollouts", "abort/", phases.abort_rollout, "abort_rollout"),
    ("rollouts", "report/", reports.rollout_report, "rollout_report"),
    ("rollouts", "report.md", reports.rollout_report_markdown, "rollout_report_markdown"),
    ("phases", "", phases.phase_run, "phase_run"),
    ("phases", "evidence-check/", phases.evidence_check, "evidence_check"),
    ("build-changes", "answer/", phases.answer_build_change, "answer_build_change"),
    ("phases", "attest/", signoff.attest, "attest"),
    ("phases", "sign/", signoff.sign, "sign"),
    ("phases", "report/", reports.phase_report, "phase_report"),
    ("phases", "report.md", reports.phase_report_markdown, "phase_report_markdown"),
    ("check-ins", "acknowledge/", phases.acknowledge_check_in, "acknowledge_check_in"),
    ("decisions", "", signoff.decision, "decision"),
    ("decisions", "withdraw/", signoff.withdraw, "withdraw"),
    ("post-mortems", "", signoff.post_mortem, "post_mortem"),
]

urlpatterns = [
    path("", environments.overview, name="overview"),
    path("preferences/", people.preferences, name="preferences"),
    path("language/", people.language, name="language"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.<str:fmt>", audit.audit_export, name="audit_export"),
    path("rollouts/", phases.rollout_history, name="rollouts"),
    *object_pages(OBJECT_PAGES),
]
