from django.urls import path

from . import views

app_name = "slack_actions"

urlpatterns = [
    path("interactivity/", views.interactivity, name="interactivity"),
]
