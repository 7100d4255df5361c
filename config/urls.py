from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.v1 import api
from rollout.views.auth import LoginView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin logs in through the same view, so the same lockout page.
    path("admin/login/", LoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("monitoring/", include("monitoring.urls")),
    path("metrics/", include("metrics.urls")),
    path("api/v1/", api.urls),
    path("settings/", include("api.urls")),
    path("", include("rollout.urls")),
]

# A body over the upload limit, or too many fields, says what was too large and the limit.
handler400 = "rollout.views.errors.bad_request"
