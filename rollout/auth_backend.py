"""Permission sets kept in the shared cache, so a poll does not ask PostgreSQL for them.

Django's ModelBackend reads a user's permissions (two queries: their own and their groups') once
per request. Every live fragment is a request, so with 50 people polling that is most of the
database work. With a cache all processes share (Redis: ``CACHE_URL``), this backend keeps each
user's set there under a *permissions version*; any change that could alter a set — a user's
groups or permissions, a group's permissions, a user saved or deleted (active, superuser), a
group or permission deleted — bumps the version, so every process reads fresh sets from the next
request on. Without a shared cache (the embedded mode's per-process memory) a bump would reach
one process only, so settings do not install this backend there.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

VERSION_KEY = "auth:permissions-version"
TIMEOUT_SECONDS = 300


def version() -> int:
    current = cache.get(VERSION_KEY)
    if current is None:
        cache.add(VERSION_KEY, 1, None)
        current = cache.get(VERSION_KEY, 1)
    return current


def bump(**_signal) -> None:
    """Invalidate every cached permission set (a signal receiver)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # not set yet: nothing cached under a version either
        cache.add(VERSION_KEY, 1, None)


class CachedPermissionsBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            key = f"auth:permissions:{version()}:{user_obj.pk}"
            permissions = cache.get(key)
            if permissions is None:
                permissions = super().get_all_permissions(user_obj)
                cache.set(key, permissions, TIMEOUT_SECONDS)
            user_obj._perm_cache = permissions
        return user_obj._perm_cache


def connect_signals() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db.models.signals import m2m_changed, post_delete, post_save

    User = get_user_model()
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(bump, sender=through, dispatch_uid=f"perm-bump-{through.__name__}")
    for model in (User, Group, Permission):
        post_save.connect(bump, sender=model, dispatch_uid=f"perm-bump-save-{model.__name__}")
        post_delete.connect(bump, sender=model, dispatch_uid=f"perm-bump-del-{model.__name__}")
