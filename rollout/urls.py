from django.urls import path

from . import views

app_name = "rollout"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("environments/<uuid:public_id>/", views.environment_detail, name="environment"),
    path("environments/<uuid:public_id>/connect/", views.connect, name="connect"),
    path("environments/<uuid:public_id>/initial/", views.write_initial, name="write_initial"),
]
