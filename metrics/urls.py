from django.urls import path

from . import views

app_name = "metrics"

urlpatterns = [
    path("prometheus", views.prometheus, name="prometheus"),
    path("services/<slug:service>/alerts/", views.alert_rules, name="alert_rules"),
    path("services/<slug:service>/alerts/save/", views.save_alert_rules, name="save_alert_rules"),
    path("<uuid:public_id>/", views.environment_metrics, name="environment"),
    path("<uuid:public_id>/panels/", views.panels, name="panels"),
    path("<uuid:public_id>/figures.json", views.figures_json, name="figures_json"),
]
