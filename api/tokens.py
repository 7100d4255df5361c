"""Making, revoking and checking API tokens. Every write here checks its permission and is audited.

A token is ``rc_<prefix>_<secret>``: the prefix (8 hex characters) finds the row, and only the
SHA-256 of the whole token is stored, so a copy of the database holds no usable token. The token
itself is returned once, by ``issue_personal`` or ``issue_service``, and never again.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rollout import roles
from rollout.models import AuditEntry, ServiceAccount
from rollout.permissions import require
from rollout.services import audit
from rollout.templatetags.times import in_words

from .models import ApiToken

TOKEN_START = "rc_"
# Checking a token writes its last use at most this often, not on every request.
LAST_USED_EVERY = timedelta(seconds=60)


class TokenRefused(Exception):
    """The token cannot be used (unknown, revoked, expired, its person deactivated): 401."""


@dataclass(frozen=True)
class Issued:
    """A token just made: ``secret`` is the whole token, shown once."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new(*, name: str, kind: str, user, created_by, expires_at: datetime) -> Issued:
    for _attempt in range(5):
        prefix = secrets.token_hex(4)
        secret = f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    name=name,
                    kind=kind,
                    user=user,
                    prefix=prefix,
                    token_hash=_digest(secret),
                    created_by=created_by,
                    expires_at=expires_at,
                )
        except IntegrityError:  # the same prefix drawn twice: draw again
            continue
        return Issued(token, secret)
    raise RuntimeError("could not draw a free token prefix")


def issue_personal(*, person, name: str, days: int, request=None) -> Issued:
    """A token that acts as ``person``, for ``days`` days."""
    with transaction.atomic():
        issued = _new(
            name=name,
            kind=ApiToken.Kind.PERSONAL,
            user=person,
            created_by=person,
            expires_at=timezone.now() + timedelta(days=days),
        )
        _audit("api_token.created", issued.token, actor=person, request=request)
    return issued


def issue_service(
    *,
    admin,
    account_name: str,
    role: str,
    name: str,
    days: int,
    description: str = "",
    request=None,
) -> Issued:
    """A service token for the service account ``account_name``, made on first use with its one
    role. An existing account keeps its role."""
    require(admin, "rollout.add_serviceaccount", request=request)
    if role not in roles.ALL:
        raise ValueError(f"unknown role {role!r}")
    with transaction.atomic():
        account = ServiceAccount.objects.filter(user__username=account_name).first()
        if account is None:
            if User.objects.filter(username=account_name).exists():
                raise ValueError(f"{account_name} is a person's name, not a service account")
            user = User.objects.create_user(username=account_name)  # no usable password
            user.groups.add(Group.objects.get(name=role))
            account = ServiceAccount.objects.create(
                user=user, description=description, created_by=admin
            )
            audit.record(
                action="service_account.created",
                actor=admin,
                obj=account,
                after={"name": account_name, "role": role},
                request=request,
            )
        issued = _new(
            name=name,
            kind=ApiToken.Kind.SERVICE,
            user=account.user,
            created_by=admin,
            expires_at=timezone.now() + timedelta(days=days),
        )
        _audit("api_token.created", issued.token, actor=admin, request=request)
    return issued


def revoke(*, token: ApiToken, person, request=None) -> bool:
    """Revoke a token: its owner may revoke their own, an admin any service token.
    False when it was already revoked."""
    if token.kind == ApiToken.Kind.SERVICE or token.user_id != person.pk:
        require(person, "rollout.change_serviceaccount", obj=token, request=request)
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=person
    )
    if revoked:
        token.refresh_from_db()
        _audit("api_token.revoked", token, actor=person, request=request)
    return bool(revoked)


def _audit(action: str, token: ApiToken, *, actor, request) -> None:
    audit.record(
        action=action,
        actor=actor,
        obj=token,
        after={
            "name": token.name,
            "kind": token.kind,
            "user": token.user.get_username(),
            "prefix": token.prefix,
            "expires_on": token.expires_at.date().isoformat(),
        },
        outcome=AuditEntry.Outcome.OK,
        detail=token.label,
        request=request,
    )


def authenticate(secret: str, *, address: str | None, now: datetime | None = None) -> ApiToken:
    """The token ``secret`` names, if it may be used now; TokenRefused says why not."""
    now = now or timezone.now()
    parts = secret.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != TOKEN_START:
        raise TokenRefused(_("This is not a Rollout Control token (they start with rc_)."))
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.token_hash, _digest(secret)):
        raise TokenRefused(_("This token is not known."))
    if token.revoked_at:
        raise TokenRefused(
            _("This token was revoked on %(moment)s.") % {"moment": in_words(token.revoked_at)}
        )
    if token.expires_at <= now:
        raise TokenRefused(
            _("This token expired on %(moment)s.") % {"moment": in_words(token.expires_at)}
        )
    if not token.user.is_active:
        raise TokenRefused(
            _("The account %(name)s is deactivated.") % {"name": token.user.get_username()}
        )
    _note_use(token, address, now)
    return token


def _note_use(token: ApiToken, address: str | None, now: datetime) -> None:
    stale = token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY
    if stale or token.last_used_ip != address:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=address)
        token.last_used_at, token.last_used_ip = now, address
