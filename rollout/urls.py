from django.urls import path

from . import audit_views, views

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
]
