from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from rollout.models import ConfigChange, DesiredConfig, Environment, Phase, RolloutPlan, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def environment():
    service = Service.objects.create(name="pix-immo-api")
    return Environment.objects.create(
        service=service,
        name="production",
        cloudflare_account_id="acc",
        kv_namespace_id="ns",
        qa_url="http://127.0.0.1:9/production/api/qa",
    )


def _refused(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        DesiredConfig.objects.create(**fields)


@pytest.mark.parametrize("percent", [101, 1000])
def test_the_database_refuses_a_percent_above_100(environment, percent):
    _refused(environment=environment, canary_percent=percent, canary_tag="B2a")


def test_the_database_refuses_a_negative_percent(environment):
    _refused(environment=environment, canary_percent=-1, canary_tag="B2a")


def test_the_database_refuses_an_empty_tag(environment):
    _refused(environment=environment, canary_percent=10, canary_tag="")


def test_one_desired_config_per_environment(environment):
    DesiredConfig.objects.create(environment=environment, canary_percent=10, canary_tag="B2a")
    _refused(environment=environment, canary_percent=20, canary_tag="B2a")


def test_one_environment_of_each_name_per_service(environment):
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.create(
            service=environment.service,
            name="production",
            cloudflare_account_id="a",
            kv_namespace_id="b",
            qa_url="http://x/api/qa",
        )


def test_phases_are_ordered_and_unique(environment):
    plan = RolloutPlan.objects.create(service=environment.service, name="B2")
    Phase.objects.create(plan=plan, position=1, tag="B2a", percent=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Phase.objects.create(plan=plan, position=1, tag="B2b", percent=25)
    with pytest.raises(IntegrityError), transaction.atomic():
        Phase.objects.create(plan=plan, position=2, tag="B2a", percent=25)
    with pytest.raises(IntegrityError), transaction.atomic():
        Phase.objects.create(plan=plan, position=3, tag="B2c", percent=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        Phase.objects.create(
            plan=plan, position=4, tag="B2d", percent=50, min_observation=timedelta(hours=-1)
        )


def _change(environment, version, **fields):
    fields = {
        "kind": ConfigChange.Kind.PERCENT_CHANGE,
        "requested_by_system": "test",
        "reason": "because",
        "after": {"canary_percent": 10, "canary_tag": "B2a", "emergency_proxy": False},
        **fields,
    }
    return ConfigChange.objects.create(environment=environment, version=version, **fields)


def test_a_change_needs_a_reason_and_an_actor(environment):
    with pytest.raises(IntegrityError), transaction.atomic():
        _change(environment, 1, reason="")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConfigChange.objects.create(
            environment=environment,
            version=1,
            kind="rollback",
            reason="r",
            after={"canary_percent": 0, "canary_tag": "B2a", "emergency_proxy": False},
        )


def test_one_change_per_version(environment):
    _change(environment, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        _change(environment, 1)


def test_transitions_are_compare_and_set(environment):
    change = _change(environment, 1)
    assert change.start_attempt() and change.attempts == 1
    assert change.mark_written(value_before="", value_written="{}")
    assert not change.start_attempt(), "a written change cannot start another attempt"
    assert not change.mark_failed("late failure"), "nor fail afterwards"
    assert change.mark_in_effect()
    assert change.time_to_effect is not None and change.time_to_effect.total_seconds() >= 0


def test_superseding_touches_only_older_open_changes(environment):
    done = _change(environment, 1)
    done.start_attempt()
    done.mark_written(value_before="", value_written="{}")
    done.mark_in_effect()
    waiting = _change(environment, 2)
    newest = _change(environment, 3)
    assert ConfigChange.supersede_older(environment, 3) == [waiting.pk]
    done.refresh_from_db()
    newest.refresh_from_db()
    waiting.refresh_from_db()
    assert (done.state, waiting.state, newest.state) == ("in_effect", "superseded", "requested")


def test_the_kv_lease_is_exclusive_until_released(environment):
    first = environment.try_acquire_kv_lease(seconds=30)
    assert first is not None
    assert environment.try_acquire_kv_lease(seconds=30) is None
    assert environment.holds_kv_lease(first, margin=1)
    environment.release_kv_lease(first)
    assert environment.try_acquire_kv_lease(seconds=30) is not None


def test_an_expired_lease_can_be_taken_over(environment):
    stale = environment.try_acquire_kv_lease(seconds=-1)
    assert stale is not None
    assert not environment.holds_kv_lease(stale, margin=0)
    assert environment.try_acquire_kv_lease(seconds=30) is not None
