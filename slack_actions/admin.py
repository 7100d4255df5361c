from django.contrib import admin

from rollout.admin import ReadOnlyAdmin
from rollout.services import audit

from .models import SlackAction, SlackUser


def _mapping(obj: SlackUser) -> dict:
    return {"slack_user_id": obj.slack_user_id, "user": obj.user.get_username()}


@admin.register(SlackUser)
class SlackUserAdmin(admin.ModelAdmin):
    """Who acts for a Slack user. Every change is audited: a mapping decides whose name an
    approval or an emergency stop from Slack carries."""

    list_display = ["slack_user_id", "user", "source", "email", "checked_at"]
    search_fields = ["slack_user_id", "user__username", "email"]
    fields = ["slack_user_id", "user", "source", "email", "checked_at"]
    readonly_fields = ["source", "email", "checked_at"]

    def save_model(self, request, obj, form, change):
        before = None
        if change:
            before = _mapping(SlackUser.objects.select_related("user").get(pk=obj.pk))
        # Set here, by a person: an email match never replaces it.
        obj.source = SlackUser.Source.ADMIN
        obj.email, obj.checked_at = "", None
        super().save_model(request, obj, form, change)
        audit.record(
            action="slack.mapping_changed" if change else "slack.mapping_added",
            actor=request.user,
            before=before,
            after=_mapping(obj),
            detail=f"Slack user {obj.slack_user_id} acts as {obj.user.get_username()}",
            request=request,
        )

    def delete_model(self, request, obj):
        before = _mapping(obj)
        super().delete_model(request, obj)
        audit.record(
            action="slack.mapping_removed",
            actor=request.user,
            before=before,
            detail=f"Slack user {before['slack_user_id']} no longer acts for anyone",
            request=request,
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(SlackAction)
class SlackActionAdmin(ReadOnlyAdmin):
    """Presses are recorded by the endpoint and the task; nobody edits them."""

    list_display = ["created_at", "action", "slack_user_id", "user", "state", "replied_at"]
    list_filter = ["action", "state"]
