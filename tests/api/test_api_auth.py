"""Who a request to /api/v1 acts as: a bearer token, checked on every request."""

from datetime import timedelta

from django.utils import timezone

from api import tokens
from api.models import ApiToken
from tests.api.conftest import assert_problem, token_of


def test_without_a_token_it_is_401_with_a_bearer_challenge(api, viewer):
    response = api().get("/whoami")
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]


def test_a_token_acts_as_its_owner(api, release_manager):
    secret = token_of(release_manager, name="laptop")
    response = api(secret).get("/whoami")
    assert response.status_code == 200, response.text
    body = response.json()
    token = ApiToken.objects.get()
    assert body["user"] == "rita"
    assert body["token"] == {
        "name": "laptop",
        "id": str(token.public_id),
        "kind": "personal",
        "expires_at": body["token"]["expires_at"],
    }
    assert body["roles"] == ["release manager"]
    assert "rollout.request_change" in body["permissions"]
    assert "rollout.approve_increase" not in body["permissions"]
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"


def test_only_the_hash_of_a_token_is_stored(release_manager):
    issued = tokens.issue_personal(person=release_manager, name="laptop", days=7)
    stored = ApiToken.objects.filter(pk=issued.token.pk).values()[0]
    assert issued.secret.startswith(f"rc_{issued.token.prefix}_")
    assert issued.secret not in str(stored)


def test_a_revoked_token_is_refused(api, release_manager):
    secret = token_of(release_manager)
    tokens.revoke(token=ApiToken.objects.get(), person=release_manager)
    body = assert_problem(api(secret).get("/whoami"), 401)
    assert "revoked" in body["detail"]


def test_an_expired_token_is_refused(api, release_manager):
    secret = token_of(release_manager)
    ApiToken.objects.update(
        created_at=timezone.now() - timedelta(days=40), expires_at=timezone.now()
    )
    body = assert_problem(api(secret).get("/whoami"), 401)
    assert "expired" in body["detail"]


def test_the_token_of_a_deactivated_person_is_refused(api, release_manager):
    secret = token_of(release_manager)
    release_manager.is_active = False
    release_manager.save()
    body = assert_problem(api(secret).get("/whoami"), 401)
    assert "deactivated" in body["detail"]


def test_a_wrong_secret_with_a_real_prefix_is_refused(api, release_manager):
    secret = token_of(release_manager)
    assert_problem(api(secret[:-4] + "AAAA").get("/whoami"), 401)
    assert_problem(api("not-a-token").get("/whoami"), 401)


def test_a_person_without_a_role_reads_nothing(api, outsider):
    body = assert_problem(api(token_of(outsider)).get("/environments"), 403)
    assert "rollout.view_environment" in body["detail"]
