"""A press from Slack is never lost and never carried out twice: pressed while the broker is
down, or left "acting" by a worker that died, the sweep queues it again; too old, it is given up
and the presser told; an act and the press's outcome commit together."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rollout.models import AuditEntry, PercentRequest
from slack_actions import interactions
from slack_actions.models import SlackAction, SlackUser
from tests.conftest import wait_for
from tests.slack_actions.conftest import increase_message, raise_to_b2b, slack_worker_env
from tests.support.slack import press, signed

pytestmark = pytest.mark.django_db(transaction=True)

APPROVE = "rollout_control.approve"


@pytest.fixture
def pending(slack, production_configured, release_manager, tech_lead):
    SlackUser.objects.create(slack_user_id="UTHEO", user=tech_lead)
    return raise_to_b2b(production_configured, release_manager)


def recorded_press(slack, pending, *, state, age, trigger="t1", **fields) -> SlackAction:
    """An approve press as the endpoint records it, made ``age`` ago and left in ``state``."""
    payload = press(slack, increase_message(pending), APPROVE, user="UTHEO", trigger=trigger)
    return SlackAction.objects.create(
        trigger_id=trigger,
        action=APPROVE,
        object_id=str(pending.public_id),
        slack_user_id="UTHEO",
        response_url=payload["response_url"],
        message={"text": payload["message"]["text"], "blocks": payload["message"]["blocks"]},
        state=state,
        created_at=timezone.now() - age,
        **fields,
    )


@pytest.mark.worker
def test_a_press_made_while_the_broker_was_down_is_carried_out_by_the_sweep(
    slack, pending, live_server, http, redis_server, start_worker
):
    redis_server.stop()
    try:
        body, headers = signed(
            press(slack, increase_message(pending), APPROVE, user="UTHEO", trigger="t1")
        )
        url = live_server.url + reverse("slack_actions:interactivity")
        assert http.post(url, content=body, headers=headers).status_code == 200
    finally:
        redis_server.start()
    assert SlackAction.objects.get().state == "queued", "recorded, though it could not be queued"

    start_worker(env=slack_worker_env(slack))
    assert interactions.sweep(now=timezone.now()) == [], "not yet: the broker may still deliver"
    interactions.sweep(now=timezone.now() + interactions.REQUEUE_AFTER + timedelta(seconds=1))

    wait_for(lambda: SlackAction.objects.exclude(replied_at=None).exists(), timeout=30)
    assert SlackAction.objects.get().state == "done"
    pending.refresh_from_db()
    assert pending.state == "approved"
    assert AuditEntry.objects.filter(action="approval.approved").count() == 1
    assert len(slack.responses) == 1


def test_a_press_left_acting_by_a_dead_worker_is_carried_out_once(slack, pending):
    dead = timezone.now() - interactions.ACTING_LEASE - timedelta(seconds=5)
    action = recorded_press(
        slack, pending, state="acting", age=timedelta(seconds=70), attempts=1, acting_since=dead
    )
    assert interactions.sweep() == [action.pk]
    action.refresh_from_db()
    assert action.state == "queued"

    interactions.carry_out(action.pk)
    interactions.carry_out(action.pk)  # the same task delivered twice
    action.refresh_from_db()
    assert (action.state, action.attempts) == ("done", 2)
    assert AuditEntry.objects.filter(action="approval.approved").count() == 1
    assert len(slack.responses) == 1


def test_a_worker_whose_press_was_handed_on_does_not_act(slack, pending):
    action = recorded_press(slack, pending, state="queued", age=timedelta(seconds=1))
    SlackAction.objects.filter(pk=action.pk).update(state="acting", attempts=1)
    stale = SlackAction.objects.get(pk=action.pk)
    # Meanwhile the sweep handed the press to another worker, which took it (attempt 2).
    SlackAction.objects.filter(pk=action.pk).update(attempts=2)

    interactions._act_as_the_presser(stale)

    pending.refresh_from_db()
    assert pending.state == "pending"
    assert not AuditEntry.objects.filter(action="approval.approved").exists()


def test_an_act_and_its_outcome_commit_together(slack, pending, monkeypatch):
    action = recorded_press(slack, pending, state="queued", age=timedelta(seconds=1))
    finish = interactions._finish
    calls = []

    def dies_after_the_act(action, state, outcome, **kwargs):
        calls.append(state)
        if len(calls) == 1:
            raise RuntimeError("the database went away after the approval")
        return finish(action, state, outcome, **kwargs)

    monkeypatch.setattr(interactions, "_finish", dies_after_the_act)
    interactions.carry_out(action.pk)

    action.refresh_from_db()
    assert action.state == "failed"
    pending.refresh_from_db()
    assert pending.state == "pending", "the approval rolled back with its unrecorded outcome"
    assert not AuditEntry.objects.filter(action="approval.approved").exists()


def test_a_press_too_old_is_given_up_and_the_presser_told(slack, pending):
    action = recorded_press(
        slack, pending, state="queued", age=interactions.GIVE_UP_AFTER + timedelta(seconds=1)
    )
    interactions.sweep()
    action.refresh_from_db()
    assert action.state == "failed" and "nothing was done" in action.outcome
    interactions.carry_out(action.pk)  # what the sweep queued: the answer
    (reply,) = slack.responses
    assert reply["json"]["response_type"] == "ephemeral"
    assert "nothing was done" in reply["json"]["text"]
    pending.refresh_from_db()
    assert pending.state == "pending"
    assert PercentRequest.objects.get().state == "pending"


def test_an_outcome_never_told_to_slack_is_told_by_the_sweep(slack, pending):
    action = recorded_press(
        slack,
        pending,
        state="refused",
        age=timedelta(minutes=2),
        outcome="You may not.",
        finished_at=timezone.now() - timedelta(minutes=1),
    )
    answered = recorded_press(
        slack,
        pending,
        state="done",
        age=timedelta(minutes=2),
        trigger="t2",
        finished_at=timezone.now() - timedelta(minutes=1),
        replied_at=timezone.now(),
        reply_attempts=1,
    )
    assert interactions.sweep() == [action.pk]
    assert answered.pk not in interactions.sweep()
