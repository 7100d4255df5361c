"""People signing in: the company login's person and their roles from the company's groups
(docs/roles.md, "Roles from the company's groups"), and the break-glass log-ins."""

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import notifications, roles
from ..company_login import SignInFailed
from ..models import AuditEntry, CompanyAccount, Preferences
from . import audit

SYSTEM = "company login"


class NoRole(SignInFailed):
    """The person signed in, but none of their groups gives a role here."""


def roles_for(groups: list[str]) -> list[str]:
    """The roles the groups give (``OIDC_ROLE_GROUPS``), in the order of ``roles.ALL``."""
    mapping = settings.OIDC_ROLE_GROUPS
    return [role for role in roles.ALL if set(mapping.get(role, ())) & set(groups)]


def company_sign_in(*, issuer: str, claims: dict, request=None) -> User:
    """The dashboard user of the person the provider vouched for: created on their first
    sign-in with their name and email, both kept up to date, and their roles set from their
    groups at every sign-in. Raises ``SignInFailed``: ``NoRole`` when no group gives a role
    (after taking away the roles they had; someone new is not created)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SignInFailed(_("The company sign-in did not say who you are."), status=403)
    groups = _groups(claims)
    given = roles_for(groups)
    details = _details(claims)
    who = f"{details['username']} ({details['email'] or subject})"
    no_role = NoRole(
        _(
            "None of your company groups gives a role in Rollout Control. Ask "
            "%(OIDC_NO_ROLE_CONTACT)s to add you to a group that does."
        )
        % {"OIDC_NO_ROLE_CONTACT": settings.OIDC_NO_ROLE_CONTACT},
        status=403,
        who=f"{who}, groups {', '.join(groups) or 'none'}",
    )
    account = (
        CompanyAccount.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    )
    if account is None:
        if not given:
            raise no_role  # nobody is created who could do nothing here
        account = _create(issuer=issuer, subject=subject, details=details, request=request)
    else:
        # The username stays what it was first: another account may have taken the new one.
        kept = ("email", "first_name", "last_name")
        changed = {name for name in kept if getattr(account.user, name) != details[name]}
        for name in changed:
            setattr(account.user, name, details[name])
        if changed:
            account.user.save(update_fields=sorted(changed))
    user = account.user
    if not user.is_active:
        raise SignInFailed(
            _("Your account here is switched off. Ask %(OIDC_NO_ROLE_CONTACT)s.")
            % {"OIDC_NO_ROLE_CONTACT": settings.OIDC_NO_ROLE_CONTACT},
            status=403,
            who=who,
        )
    set_roles(user=user, given=given, groups=groups, request=request)
    account.groups = groups
    account.last_sign_in_at = timezone.now()
    account.save(update_fields=["groups", "last_sign_in_at"])
    if not given:
        raise no_role
    return user


def set_roles(*, user: User, given: list[str], groups: list[str], request=None) -> None:
    """Give the user exactly the roles ``given`` (other Django groups stay as they are); the
    admin role also opens the admin pages (``is_staff``). A change is audited, before → after."""
    held = set(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))
    had = [role for role in roles.ALL if role in held]
    is_staff = roles.ADMIN in given
    if had == given and user.is_staff == is_staff:
        return
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=set(had) - set(given)))
        user.groups.add(*Group.objects.filter(name__in=set(given) - set(had)))
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        audit.record(
            action="person.roles_changed",
            system=SYSTEM,
            obj=user,
            before={"roles": had},
            after={"roles": given},
            detail=f"{user.get_username()}: from the company groups {', '.join(groups) or 'none'}",
            request=request,
        )


def signed_in(*, user: User, request) -> AuditEntry:
    return audit.record(
        action="auth.signed_in",
        actor=user,
        detail=f"company sign-in; roles {', '.join(roles_for(user.company_account.groups))}",
        request=request,
    )


def sign_in_failed(*, failure: SignInFailed, request) -> AuditEntry:
    return audit.record(
        action="auth.no_role" if isinstance(failure, NoRole) else "auth.company_sign_in_failed",
        system=SYSTEM,
        outcome=failure.outcome,
        detail=f"{failure.who}: {failure.reason}" if failure.who else failure.reason,
        request=request,
    )


def break_glass_signed_in(*, user: User, request) -> AuditEntry:
    """A break-glass account logged in with its local password: audited and announced in
    #incidents, whether local passwords are on for everyone or not."""
    with transaction.atomic():
        entry = audit.record(
            action="auth.break_glass",
            actor=user,
            detail=(
                "break-glass log-in with a local password"
                + ("" if settings.LOCAL_PASSWORD_LOGIN else " (local passwords are off)")
            ),
            request=request,
        )
        notifications.announce_break_glass(entry)
    return entry


def _create(*, issuer: str, subject: str, details: dict, request) -> CompanyAccount:
    username = details["username"]
    if User.objects.filter(username=username).exists():
        raise SignInFailed(
            _(
                "An account named %(username)s already exists here and is not linked "
                "to your company account. Ask %(OIDC_NO_ROLE_CONTACT)s to rename or "
                "remove it."
            )
            % {"username": repr(username), "OIDC_NO_ROLE_CONTACT": settings.OIDC_NO_ROLE_CONTACT},
            status=409,
            who=f"{subject!r} at {issuer}",
        )
    with transaction.atomic():
        user = User.objects.create_user(**details)  # no password: it signs in through the company
        account = CompanyAccount.objects.create(user=user, issuer=issuer, subject=subject)
        audit.record(
            action="person.created",
            system=SYSTEM,
            obj=user,
            after={key: value for key, value in details.items() if value},
            detail=f"first company sign-in of {subject!r} at {issuer}",
            request=request,
        )
    return account


def _details(claims: dict) -> dict:
    """Username, email and name from the standard claims, cut to what the user model holds."""
    email = str(claims.get("email") or "")
    username = str(claims.get("preferred_username") or email or claims["sub"])
    first, last = claims.get("given_name"), claims.get("family_name")
    if not (first or last):
        first, _, last = str(claims.get("name") or "").partition(" ")
    return {
        "username": username[:150],
        "email": email[:254],
        "first_name": str(first or "")[:150],
        "last_name": str(last or "")[:150],
    }


def _groups(claims: dict) -> list[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        return [str(item) for item in value]
    raise SignInFailed(
        _("The company sign-in's %(OIDC_GROUPS_CLAIM)s claim is not a list of groups.")
        % {"OIDC_GROUPS_CLAIM": repr(settings.OIDC_GROUPS_CLAIM)},
        status=403,
    )


def change_preferences(*, person: User, request=None, **chosen: str) -> Preferences:
    """Save what a person chose for themselves (``time_zone``, ``language``; "" for the site's)
    and audit it as ``preferences.changed`` with what changed. Their own only, so no permission
    is asked."""
    mine = Preferences.objects.filter(user=person).first() or Preferences(user=person)
    before = {
        field: getattr(mine, field) for field in chosen if getattr(mine, field) != chosen[field]
    }
    for field, value in chosen.items():
        setattr(mine, field, value)
    mine.save()
    audit.record(
        action="preferences.changed",
        actor=person,
        obj=mine,
        before=before,
        after={field: chosen[field] for field in before},
        request=request,
    )
    return mine
