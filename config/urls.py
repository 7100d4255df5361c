from django.contrib import admin
from django.urls import include, path, re_path
from mozilla_django_oidc.views import OIDCLogoutView

from api.problems import unknown_route
from api.v1 import api
from rollout.views.auth import CompanyCallbackView, CompanySignInView, LoginView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    # Ends the dashboard session, then the provider's for a company sign-in
    # (OIDC_OP_LOGOUT_URL_METHOD: rollout.company_login.provider_logout_url).
    path("logout/", OIDCLogoutView.as_view(), name="logout"),
    # Company login; the names are the ones mozilla-django-oidc reverses.
    path("oidc/authenticate/", CompanySignInView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", CompanyCallbackView.as_view(), name="oidc_authentication_callback"),
    # The admin logs in through the same view, so the same lockout page.
    path("admin/login/", LoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("monitoring/", include("monitoring.urls")),
    path("metrics/", include("metrics.urls")),
    path("slack/", include("slack_actions.urls")),
    path("api/v1/", api.urls),
    # A path under the API that names no route answers as the API does (problem+json), not
    # with the site's HTML page.
    re_path(r"^api/v1/", unknown_route, name="api_unknown_route"),
    path("settings/", include("api.urls")),
    path("", include("rollout.urls")),
]

# A body over the upload limit, or too many fields, says what was too large and the limit.
handler400 = "rollout.views.errors.bad_request"
