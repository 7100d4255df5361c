"""A press in Slack, from the signed request to the act and back to the message.

1. ``receive`` (in the web request, within Slack's three seconds): records the press as a
   ``SlackAction`` (its ``trigger_id`` unique: a replay adds nothing), opens the dialog of a press
   that asks for a reason (``views.open`` must use the trigger within those three seconds), and
   queues the task.
2. ``carry_out`` (in the task): the dashboard user behind the Slack user (``identities``), then
   the same service function a click calls, inside ``audit.acting_via`` so the entries name the
   person and ``via`` their Slack user id. Permission, the two-person rule and the state are the
   service's to check; a refusal is audited there, an unknown Slack user here.
3. The outcome goes back through the press's ``response_url``: the message with its buttons
   replaced by what happened, or a refusal only the presser sees. The ``response_url`` is used
   rather than ``chat.update`` because the messages come in through incoming webhooks, whose
   messages a bot token may not edit.

A press is never lost and never carried out twice: the act and the press's outcome commit in one
transaction, so a press still "acting" has changed nothing, and ``sweep`` (on beat) queues again a
press the broker lost or whose worker died, and gives up, saying so in Slack, on one too old to
be what its presser still means.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from integrations import slack
from integrations.http import shared_client
from integrations.slack_api import WebApi, respond
from rollout import limits
from rollout.models import CheckIn, DesiredConfig, Environment, PercentRequest
from rollout.permissions import Refused
from rollout.services import audit, controls, phases
from rollout.team_language import speaking

from .identities import dashboard_user
from .models import SlackAction

log = logging.getLogger(__name__)

State = SlackAction.State
# Presses that open a dialog asking for a reason (or a note) before anything is queued.
WITH_DIALOG = (slack.ACKNOWLEDGE, slack.EMERGENCY_STOP)
# Tries to learn who pressed (users.info) and to tell Slack the outcome, before giving up.
MAX_ATTEMPTS = 5
# A press still queued this long after it was made was lost by the broker (or the broker was
# down); one acting this long has lost its worker. The sweep queues either again.
REQUEUE_AFTER = timedelta(seconds=30)
ACTING_LEASE = timedelta(seconds=60)
# Older than this, a press is not carried out: the situation it answered may have moved on.
GIVE_UP_AFTER = timedelta(minutes=5)


def web_api() -> WebApi:
    return WebApi(
        token=settings.SLACK_BOT_TOKEN,
        base_url=settings.SLACK_API_BASE_URL,
        client=shared_client(settings.SLACK_API_TIMEOUT_SECONDS),
    )


# --- 1. receiving a press (the web request) ---------------------------------------------------


def receive(payload: dict) -> dict | None:
    """Act on a verified interaction payload. Returns the JSON to answer Slack with, if any (the
    dialog's own errors); None answers an empty 200, which is all Slack needs."""
    kind = payload.get("type")
    if kind == "block_actions":
        return _pressed(payload)
    if kind == "view_submission":
        return _submitted(payload)
    log.info("slack interaction of type %r ignored", kind)
    return None


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _pressed(payload: dict) -> None:
    actions = payload.get("actions")
    pressed = actions[0] if isinstance(actions, list) and actions else {}
    action_id = _text(pressed.get("action_id") if isinstance(pressed, dict) else None, 255)
    if action_id not in slack.ACTIONS:
        # Our link buttons send a press too; and an old message may carry a retired action.
        log.info("slack press of unknown action %r ignored", action_id)
        return None
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    trigger_id = _text(payload.get("trigger_id"), 255)
    slack_user_id = _text(user.get("id"), 32)
    if not trigger_id or not slack_user_id:
        log.warning("slack press without trigger_id or user ignored")
        return None
    response_url = _text(payload.get("response_url"), 500)
    if not response_url.startswith(settings.SLACK_RESPONSE_URL_PREFIX):
        response_url = ""
    try:
        with transaction.atomic():
            action = SlackAction.objects.create(
                trigger_id=trigger_id,
                action=action_id,
                object_id=_text(pressed.get("value"), 64),
                slack_user_id=slack_user_id,
                slack_team_id=_text(team.get("id"), 32),
                response_url=response_url,
                message={"text": _text(message.get("text"), 4000), "blocks": _blocks(message)},
                state=State.DIALOG if action_id in WITH_DIALOG else State.QUEUED,
            )
    except IntegrityError:
        log.info("slack press %s received again: nothing done", trigger_id)
        return None
    if action.state == State.DIALOG:
        _open_dialog(action)
    else:
        _enqueue(action)
    return None


def _blocks(message: dict) -> list:
    blocks = message.get("blocks")
    return blocks if isinstance(blocks, list) else []


def _open_dialog(action: SlackAction) -> None:
    """The stop's confirmation (or the check-in's note), naming what will happen. Who pressed is
    checked when the dialog is sent: the trigger is only good for three seconds."""
    with _team_language(action):
        view, refusal = _dialog(action)
    if view is not None:
        answer = web_api().views_open(action.trigger_id, view)
        if answer.ok:
            return
        refusal = _("Slack did not open the dialog (%(error)s); %(action)s") % {
            "error": answer.error,
            "action": _use_the_dashboard(action),
        }
    _finish(action, State.REFUSED if view is None else State.FAILED, refusal)
    _enqueue(action)


def _dialog(action: SlackAction):
    metadata = str(action.public_id)
    if action.action == slack.EMERGENCY_STOP:
        environment = _environment(action.object_id)
        desired = DesiredConfig.objects.filter(environment=environment).first()
        if environment is None or desired is None:
            return None, _("This environment no longer exists or has no desired config.")
        if desired.emergency_proxy:
            return None, _("The emergency stop is already active on %(environment)s.") % {
                "environment": environment
            }
        target = controls.emergency_stop_target(desired)
        what = controls.describe_transition(environment, desired.settings, target)
        return slack.dialog(
            callback_id=slack.EMERGENCY_STOP,
            title=_("Emergency stop"),
            text=_(
                "*%(name)s %(what)s*\nThe emergency flag overrides every sticky cookie: "
                "all clients go to proxy."
            )
            % {"name": environment.service.name, "what": what},
            label=_("Reason (recorded in the audit trail)"),
            submit=_("Stop now"),
            private_metadata=metadata,
            max_length=limits.REASON,
        ), ""
    check_in = _check_in(action.object_id)
    if check_in is None:
        return None, _("This check-in no longer exists.")
    return slack.dialog(
        callback_id=slack.ACKNOWLEDGE,
        title=(_("Check-in %(label)s") % {"label": check_in.label_words})[:24],
        text=_("*%(environment)s*: %(run)s %(label)s — %(purpose)s")
        % {
            "environment": check_in.phase_run.environment,
            "run": check_in.phase_run,
            "label": check_in.label_words,
            "purpose": _(check_in.purpose),
        },
        label=_("What did you check?"),
        submit=_("Acknowledge"),
        private_metadata=metadata,
        max_length=limits.NOTE,
    ), ""


def _submitted(payload: dict) -> dict | None:
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    if view.get("callback_id") not in WITH_DIALOG:
        log.info("slack dialog %r ignored", view.get("callback_id"))
        return None
    try:
        public_id = uuid.UUID(_text(view.get("private_metadata"), 64))
    except ValueError:
        return None
    reason = slack.dialog_input(view).strip()
    limit = limits.REASON if view.get("callback_id") == slack.EMERGENCY_STOP else limits.NOTE
    if not reason or len(reason) > limit:
        why = (
            _("Say in a few words why.")
            if not reason
            else _("At most %(limit)s characters.") % {"limit": format(limit, ",")}
        )
        return {"response_action": "errors", "errors": {slack.DIALOG_INPUT: why}}
    # From the dialog's press by the same person: a replayed submission finds it queued already.
    sent = SlackAction.objects.filter(
        public_id=public_id,
        action=view.get("callback_id"),
        state=State.DIALOG,
        slack_user_id=_text(user.get("id"), 32),
    ).update(state=State.QUEUED, reason=reason)
    if sent:
        _enqueue(SlackAction.objects.get(public_id=public_id))
    return None


def _enqueue(action: SlackAction) -> None:
    from .tasks import carry_out

    def send():
        try:
            urgent = action.action == slack.EMERGENCY_STOP
            carry_out.apply_async((action.pk,), priority=0 if urgent else 5)
        except Exception as exc:  # broker down: the press is recorded, the person presses again
            log.warning("could not queue slack press %s: %s", action.pk, exc)

    transaction.on_commit(send)


# --- 2. carrying it out (the task) -----------------------------------------------------------


def carry_out(action_pk: int) -> float | None:
    """Act on a queued press and tell Slack. Returns seconds until it should be tried again."""
    action = SlackAction.objects.filter(pk=action_pk).first()
    if action is None:
        return None
    if action.state == State.QUEUED:
        retry_in = _act(action)
        if retry_in is not None:
            return retry_in
        action.refresh_from_db()
    if action.state in SlackAction.FINISHED and action.replied_at is None:
        return _reply(action)
    return None


def _act(action: SlackAction) -> float | None:
    # Compare-and-set: one worker acts, a second delivery of the task finds it taken.
    if not SlackAction.objects.filter(pk=action.pk, state=State.QUEUED).update(
        state=State.ACTING, attempts=F("attempts") + 1, acting_since=timezone.now()
    ):
        return None
    action.refresh_from_db()
    try:
        with _team_language(action):
            return _act_as_the_presser(action)
    except Exception:
        # Recorded and answered, never left "acting": the service's transaction rolled back.
        log.exception("slack press %s failed", action.pk)
        _finish(action, State.FAILED, _("It failed on our side; check the dashboard."))
        return None


def _act_as_the_presser(action: SlackAction) -> float | None:
    identity = dashboard_user(action.slack_user_id, api=web_api(), now=timezone.now())
    if identity.retry_in is not None and action.attempts < MAX_ATTEMPTS:
        SlackAction.objects.filter(pk=action.pk, state=State.ACTING).update(state=State.QUEUED)
        return identity.retry_in
    if identity.user is None:
        audit.record(
            action="permission.denied",
            system="slack",
            via=action.via,
            environment=_environment_of(action),
            outcome=audit.AuditEntry.Outcome.REFUSED,
            detail=f"Slack user {action.slack_user_id} pressed "
            f"{action.get_action_display()} ({action.object_id}): {identity.why}",
        )
        _finish(action, State.REFUSED, identity.why)
        return None
    with transaction.atomic():
        # Still this worker's press (the sweep may have handed it to another after the lease):
        # the act and its outcome commit together, or neither does.
        taken = SlackAction.objects.select_for_update().filter(
            pk=action.pk, state=State.ACTING, attempts=action.attempts
        )
        if not taken.exists():
            return None
        with audit.acting_via(identity.user, action.via):
            state, outcome = _perform(action, identity.user)
        _finish(action, state, outcome, user=identity.user)
    return None


def _perform(action: SlackAction, person) -> tuple[str, str]:
    """The service a click on the same button calls; its refusals are the presser's answer."""
    act = {
        slack.APPROVE: _approve,
        slack.REJECT: _reject,
        slack.ACKNOWLEDGE: _acknowledge,
        slack.EMERGENCY_STOP: _emergency_stop,
    }[action.action]
    try:
        return act(action, person, person.get_username())
    except (
        Refused,
        controls.ControlRefused,
        controls.ConfigConflict,
        phases.TransitionRefused,
    ) as refused:
        return State.REFUSED, str(refused)


def _approve(action, person, who):
    pending = _percent_request(action.object_id)
    if pending is None:
        return State.REFUSED, _("This request no longer exists.")
    change = controls.approve_percent_request(percent_request=pending, approver=person)
    return State.DONE, (
        _(
            ":white_check_mark: Approved by %(who)s from Slack: %(settings)s "
            "queued (version %(version)s)."
        )
        % {"who": who, "settings": change.settings.describe(), "version": change.version}
    )


def _reject(action, person, who):
    pending = _percent_request(action.object_id)
    if pending is None:
        return State.REFUSED, _("This request no longer exists.")
    decided = controls.reject_percent_request(percent_request=pending, person=person, note="")
    return State.DONE, _(":no_entry: %(capitalize)s by %(who)s from Slack.") % {
        "capitalize": decided.get_state_display().capitalize(),
        "who": who,
    }


def _acknowledge(action, person, who):
    check_in = _check_in(action.object_id)
    if check_in is None:
        return State.REFUSED, _("This check-in no longer exists.")
    phases.acknowledge(check_in, person=person, note=action.reason, now=timezone.now())
    return State.DONE, (
        _(":white_check_mark: %(label)s acknowledged by %(who)s from Slack: %(reason)s")
        % {"label": check_in.label_words, "who": who, "reason": action.reason}
    )


def _emergency_stop(action, person, who):
    environment = _environment(action.object_id)
    if environment is None:
        return State.REFUSED, _("This environment no longer exists.")
    change = controls.emergency_stop(environment=environment, reason=action.reason, actor=person)
    return State.DONE, (
        _(
            ":octagonal_sign: EMERGENCY STOP by %(who)s from Slack: 100%% of "
            "traffic to proxy (version %(version)s). Reason: %(reason)s"
        )
        % {"who": who, "version": change.version, "reason": action.reason}
    )


def _finish(action: SlackAction, state: str, outcome: str, *, user=None) -> None:
    SlackAction.objects.filter(pk=action.pk).update(
        state=state, outcome=outcome[:4000], user=user, finished_at=timezone.now()
    )
    action.refresh_from_db()


# --- the sweep ------------------------------------------------------------------------------


def sweep(now=None) -> list[int]:
    """Queue again each press the broker lost or whose worker died; give up on those older than
    ``GIVE_UP_AFTER`` and tell the presser. Returns the ids queued."""
    now = now or timezone.now()
    too_old = SlackAction.objects.filter(
        state__in=(State.QUEUED, State.ACTING), created_at__lt=now - GIVE_UP_AFTER
    )
    for action in too_old:
        with _team_language(action):
            outcome = _(
                "Not carried out: it waited too long, and nothing was done. "
                "Press again if it still applies, or use the dashboard."
            )
        # Nothing was done: an act commits with its outcome, so "acting" means not yet.
        if SlackAction.objects.filter(pk=action.pk, state=action.state).update(
            state=State.FAILED, outcome=outcome, finished_at=now
        ):
            _enqueue(action)
    SlackAction.objects.filter(
        state=State.ACTING, acting_since__lt=now - ACTING_LEASE, created_at__gte=now - GIVE_UP_AFTER
    ).update(state=State.QUEUED)
    lost = SlackAction.objects.filter(
        state=State.QUEUED, created_at__lt=now - REQUEUE_AFTER, created_at__gte=now - GIVE_UP_AFTER
    )
    unanswered = SlackAction.objects.filter(
        state__in=SlackAction.FINISHED,
        replied_at=None,
        reply_attempts=0,
        finished_at__lt=now - REQUEUE_AFTER,
    )
    queued = list(lost.values_list("pk", flat=True)) + list(unanswered.values_list("pk", flat=True))
    for action in SlackAction.objects.filter(pk__in=queued):
        _enqueue(action)
    return queued


# --- 3. telling Slack ---------------------------------------------------------------------------


def _reply(action: SlackAction) -> float | None:
    if not action.response_url:
        SlackAction.objects.filter(pk=action.pk).update(reply_error="no response_url")
        return None
    if action.state == State.DONE:
        blocks = action.message.get("blocks") or []
        message = {
            "replace_original": True,
            "text": action.message.get("text") or action.outcome,
            "blocks": slack.with_outcome(blocks, action.outcome),
        }
    else:
        message = {"response_type": "ephemeral", "replace_original": False, "text": action.outcome}
    client = shared_client(settings.HTTP_TIMEOUT_SECONDS)
    answer = respond(action.response_url, message, client=client)
    SlackAction.objects.filter(pk=action.pk).update(
        reply_attempts=F("reply_attempts") + 1,
        replied_at=timezone.now() if answer.ok else None,
        reply_error="" if answer.ok else answer.error,
    )
    if not answer.ok and answer.transient and action.reply_attempts + 1 < MAX_ATTEMPTS:
        return answer.retry_after or 2.0 ** (action.reply_attempts + 1)
    return None


# --- what a button names --------------------------------------------------------------------


def _named(queryset, public_id: str):
    try:
        return queryset.filter(public_id=uuid.UUID(public_id)).first()
    except ValueError:
        return None


def _percent_request(public_id: str):
    return _named(PercentRequest.objects.select_related("environment"), public_id)


def _check_in(public_id: str):
    related = ("phase_run__rollout__environment__service", "phase_run__phase")
    return _named(CheckIn.objects.select_related(*related), public_id)


def _environment(public_id: str):
    return _named(Environment.objects.select_related("service"), public_id)


def _environment_of(action: SlackAction):
    if action.action == slack.EMERGENCY_STOP:
        return _environment(action.object_id)
    if action.action == slack.ACKNOWLEDGE:
        check_in = _check_in(action.object_id)
        return check_in.phase_run.environment if check_in else None
    pending = _percent_request(action.object_id)
    return pending.environment if pending else None


def _team_language(action: SlackAction):
    """The answers go to the team's channel: in the service's language (``Service.language``)."""
    environment = _environment_of(action)
    return speaking(environment.service) if environment else translation.override(None)


def _use_the_dashboard(action: SlackAction) -> str:
    environment = _environment_of(action)
    if environment is None:
        return _("use the dashboard.")
    page = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    return _("use the dashboard: %(page)s") % {"page": page}
