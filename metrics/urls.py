from django.urls import path

from rollout.routes import object_pages

from . import views

app_name = "metrics"

urlpatterns = [
    path("prometheus", views.prometheus, name="prometheus"),
    path("services/<slug:service>/alerts/", views.alert_rules, name="alert_rules"),
    path("services/<slug:service>/alerts/save/", views.save_alert_rules, name="save_alert_rules"),
    *object_pages(
        [
            ("", "", views.environment_metrics, "environment"),
            ("", "panels/", views.panels, "panels"),
            ("", "figures.json", views.figures_json, "figures_json"),
        ]
    ),
]
