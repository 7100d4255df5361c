from django.urls import path

from . import views

app_name = "api_tokens"

urlpatterns = [
    path("api-tokens/", views.my_tokens, name="mine"),
    path("api-tokens/panel/", views.my_tokens_panel, name="panel"),
    path("api-tokens/new/", views.create_token, name="create"),
    path("api-tokens/<uuid:public_id>/revoke/", views.revoke_token, name="revoke"),
    path("service-tokens/", views.service_tokens, name="service"),
    path("service-tokens/new/", views.create_service_token, name="create_service"),
]
