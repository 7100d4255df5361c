from rollout.routes import object_pages

from . import views

app_name = "monitoring"

urlpatterns = object_pages(
    [
        ("environments", "", views.environment_page, "environment"),
        ("environments", "panel/", views.cohort_panel, "cohort_panel"),
        ("environments", "samples/", views.sample_now, "sample_now"),
        ("environments", "checks/", views.checks, "checks"),
        ("environments", "drift/", views.drift_fragment, "drift"),
        ("environments", "drift/adopt/", views.adopt, "adopt"),
        ("environments", "drift/overwrite/", views.overwrite, "overwrite"),
    ]
)
