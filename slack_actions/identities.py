"""The dashboard user behind a Slack user id: an admin's mapping, or the one active account whose
email Slack confirmed for the user (``users.info``, scope users:read.email)."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from integrations.slack_api import WebApi
from rollout.services import audit

from .models import SlackUser

# Seconds before asking Slack again when it answered neither yes nor no (and said no Retry-After).
RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Identity:
    """``user``, or ``why`` there is none (said to the presser); ``retry_in`` when Slack could
    not tell now and may later."""

    user: object = None
    why: str = ""
    retry_in: float | None = None


def dashboard_user(slack_user_id: str, *, api: WebApi, now) -> Identity:
    mapping = SlackUser.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    if mapping is not None and not mapping.needs_recheck(now):
        return _active(mapping.user)
    answer = api.users_info(slack_user_id)
    if not answer.ok:
        if answer.transient:
            return Identity(
                why=f"Slack did not say who you are ({answer.error}).",
                retry_in=answer.retry_after or RETRY_SECONDS,
            )
        return Identity(why=f"Slack did not say who you are ({answer.error}).")
    found = _matching_user(answer.data.get("user"))
    _remember(slack_user_id, mapping, found, now)
    return _active(found.user) if found.user is not None else Identity(why=found.why)


@dataclass(frozen=True)
class _Match:
    user: object = None
    why: str = ""
    email: str = ""


def _matching_user(info) -> _Match:
    if not isinstance(info, dict):
        return _Match(why="Slack did not say who you are.")
    if info.get("deleted") or info.get("is_bot"):
        return _Match(why="Only a person's active Slack account can act.")
    profile = info.get("profile") if isinstance(info.get("profile"), dict) else {}
    email = str(profile.get("email") or "").strip()
    if not email:
        return _Match(why="Slack shares no email address for you; ask an admin to map your user.")
    if info.get("is_email_confirmed") is not True:
        return _Match(why=f"Your Slack email address {email} is not confirmed.")
    users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(users) != 1:
        what = "No dashboard account has" if not users else "More than one dashboard account has"
        return _Match(
            why=f"{what} the email address {email}; ask an admin to map your Slack user.",
            email=email,
        )
    return _Match(user=users[0], email=email)


def _remember(slack_user_id: str, mapping: SlackUser | None, found: _Match, now) -> None:
    """Keep an email match; forget one whose email no longer matches. Audited when it changes."""
    before = mapping.user.get_username() if mapping is not None else None
    after = found.user.get_username() if found.user is not None else None
    with transaction.atomic():
        if found.user is None:
            if mapping is not None:
                mapping.delete()
        else:
            SlackUser.objects.update_or_create(
                slack_user_id=slack_user_id,
                defaults={
                    "user": found.user,
                    "source": SlackUser.Source.EMAIL,
                    "email": found.email,
                    "checked_at": now,
                },
            )
        if before != after:
            audit.record(
                action="slack.user_matched" if after else "slack.user_unmatched",
                system="slack",
                via=f"slack:{slack_user_id}",
                before={"user": before} if before else None,
                after={"user": after, "email": found.email} if after else None,
                detail=f"Slack user {slack_user_id}: "
                + (f"verified email {found.email}" if after else found.why),
            )


def _active(user) -> Identity:
    if not user.is_active:
        return Identity(why="Your dashboard account is deactivated.")
    return Identity(user=user)
