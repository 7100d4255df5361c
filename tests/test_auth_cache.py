"""Permission sets and sessions from the shared cache (rollout/auth_backend.py): a change of
roles takes effect on the very next request, and the cache is used only where it is shared."""

import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollout import roles
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BACKEND = "rollout.auth_backend.CachedPermissionsBackend"
LOCKOUT = "rollout.lockout.LockoutBackend"
COMPANY_LOGIN = "rollout.company_login.CompanyLoginBackend"


@pytest.fixture
def cached_permissions(settings):
    from django.core.cache import cache

    settings.AUTHENTICATION_BACKENDS = [LOCKOUT, BACKEND]
    cache.clear()
    yield
    cache.clear()


def permission_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    statements = [query["sql"] for query in queries.captured_queries]
    return response, [sql for sql in statements if "auth_permission" in sql]


def test_permission_sets_come_from_the_cache_after_the_first_request(cached_permissions, viewer):
    client = client_for(viewer)
    first, asked = permission_queries(client, "/audit/")
    assert first.status_code == 200 and asked
    second, asked = permission_queries(client, "/audit/")
    assert second.status_code == 200 and asked == []


def test_a_revoked_role_applies_on_the_next_request(cached_permissions, viewer):
    client = client_for(viewer)
    assert client.get("/audit/").status_code == 200
    viewer.groups.remove(Group.objects.get(name=roles.VIEWER))
    assert client.get("/audit/").status_code == 403


def test_a_granted_role_applies_on_the_next_request(cached_permissions, outsider):
    client = client_for(outsider)
    assert client.get("/audit/").status_code == 403
    outsider.groups.add(Group.objects.get(name=roles.VIEWER))
    assert client.get("/audit/").status_code == 200


def test_a_group_losing_a_permission_applies_on_the_next_request(cached_permissions, viewer):
    client = client_for(viewer)
    assert client.get("/audit/").status_code == 200
    group = Group.objects.get(name=roles.VIEWER)
    group.permissions.remove(group.permissions.get(codename="view_auditentry"))
    assert client.get("/audit/").status_code == 403


def test_a_deactivated_user_is_refused_at_once(cached_permissions, viewer):
    client = client_for(viewer)
    assert client.get("/audit/").status_code == 200
    viewer.is_active = False
    viewer.save()
    assert client.get("/audit/").status_code in (302, 403)


@pytest.mark.parametrize(
    "cache_url, shared",
    [("redis://127.0.0.1:6379/12", True), ("locmemcache://", False)],
)
def test_only_a_shared_cache_turns_it_on(cache_url, shared):
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.SESSION_ENGINE, list(settings.AUTHENTICATION_BACKENDS)]))"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", CACHE_URL=cache_url)
    env.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnopqrstu")
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    engine, backends = json.loads(output.strip().splitlines()[-1])
    policy, company = "rollout.break_glass.LocalPasswordPolicyBackend", COMPANY_LOGIN
    if shared:
        assert engine == "django.contrib.sessions.backends.cached_db"
        assert backends == [LOCKOUT, policy, BACKEND, company]
    else:
        assert engine == "django.contrib.sessions.backends.db"
        assert backends == [LOCKOUT, policy, "django.contrib.auth.backends.ModelBackend", company]
