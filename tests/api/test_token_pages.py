"""The token pages: a person's own tokens on Your settings, an admin's service tokens."""

from django.urls import reverse

from api.models import ApiToken
from rollout.models import AuditEntry, ServiceAccount
from tests.conftest import PASSWORD, client_for


def test_a_new_token_is_shown_once_and_listed_by_its_prefix(release_manager):
    client = client_for(release_manager)
    made = client.post(reverse("api_tokens:create"), {"name": "laptop CLI", "days": "30"})
    assert made.status_code == 201
    token = ApiToken.objects.get()
    secret = made.context["issued"].secret
    assert secret.startswith(f"rc_{token.prefix}_") and secret in made.content.decode()
    listed = client.get(reverse("api_tokens:mine")).content.decode()
    assert f"rc_{token.prefix}_…" in listed and secret not in listed
    assert (token.user, token.kind, token.name) == (release_manager, "personal", "laptop CLI")
    created = AuditEntry.objects.get(action="api_token.created")
    assert created.actor == release_manager and secret not in str(created.after)


def test_the_settings_page_has_an_api_tokens_section(release_manager):
    client = client_for(release_manager)
    page = client.get(reverse("rollout:preferences")).content.decode()
    assert 'id="api-tokens"' in page and reverse("api_tokens:panel") in page
    assert client.get(reverse("api_tokens:panel")).status_code == 200


def test_a_bad_name_or_expiry_is_said_and_nothing_is_made(release_manager):
    client = client_for(release_manager)
    for data in ({"name": "  ", "days": "30"}, {"name": "x", "days": "10000"}, {}):
        response = client.post(reverse("api_tokens:create"), data)
        assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_revoking_is_a_post_and_audited(release_manager):
    client = client_for(release_manager)
    client.post(reverse("api_tokens:create"), {"name": "laptop", "days": "7"})
    token = ApiToken.objects.get()
    url = reverse("api_tokens:revoke", args=[token.public_id])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == release_manager
    assert AuditEntry.objects.filter(action="api_token.revoked", actor=release_manager).count() == 1


def test_nobody_else_revokes_my_token(release_manager, second_release_manager):
    client_for(release_manager).post(reverse("api_tokens:create"), {"name": "mine", "days": "7"})
    token = ApiToken.objects.get()
    response = client_for(second_release_manager).post(
        reverse("api_tokens:revoke", args=[token.public_id])
    )
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    denied = AuditEntry.objects.get(action="permission.denied")
    assert denied.actor == second_release_manager


def test_an_admin_makes_a_service_account_that_cannot_log_in(admin_user, client):
    response = client_for(admin_user).post(
        reverse("api_tokens:create_service"),
        {"account": "ci-deploy", "role": "release manager", "name": "pipeline", "days": "90"},
    )
    assert response.status_code == 201, response.content.decode()[:500]
    account = ServiceAccount.objects.get()
    user = account.user
    assert list(user.groups.values_list("name", flat=True)) == ["release manager"]
    assert not user.has_usable_password()
    assert not client.login(username="ci-deploy", password=PASSWORD)
    assert not client.login(username="ci-deploy", password="")
    token = ApiToken.objects.get()
    assert (token.kind, token.user, token.created_by) == ("service", user, admin_user)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"service_account.created", "api_token.created"} <= actions


def test_only_an_admin_makes_service_tokens(release_manager):
    client = client_for(release_manager)
    assert client.get(reverse("api_tokens:service")).status_code == 403
    response = client.post(
        reverse("api_tokens:create_service"),
        {"account": "ci", "role": "admin", "name": "x", "days": "7"},
    )
    assert response.status_code == 403
    assert not ServiceAccount.objects.exists()
    assert AuditEntry.objects.get().action == "permission.denied"


def test_a_persons_name_cannot_become_a_service_account(admin_user, release_manager):
    response = client_for(admin_user).post(
        reverse("api_tokens:create_service"),
        {"account": "rita", "role": "admin", "name": "x", "days": "7"},
    )
    assert response.status_code == 422
    assert not ServiceAccount.objects.exists() and not ApiToken.objects.exists()
