from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("environments/<uuid:public_id>/", views.environment_page, name="environment"),
    path("environments/<uuid:public_id>/panel/", views.cohort_panel, name="cohort_panel"),
    path("environments/<uuid:public_id>/samples/", views.sample_now, name="sample_now"),
    path("environments/<uuid:public_id>/checks/", views.checks, name="checks"),
    path("environments/<uuid:public_id>/drift/", views.drift_fragment, name="drift"),
    path("environments/<uuid:public_id>/drift/adopt/", views.adopt, name="adopt"),
    path("environments/<uuid:public_id>/drift/overwrite/", views.overwrite, name="overwrite"),
]
