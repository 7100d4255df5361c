"""An emergency stop overtakes every waiting task on the Redis broker, not only routine KV
writes: tasks without a priority of their own are sent at 5 (CELERY_TASK_DEFAULT_PRIORITY), the
emergency stop's write at 0, and the broker hands out the highest priority first."""

from config.celery import app
from monitoring.tasks import observe_environment
from outbox.tasks import sweep_unsent_notifications
from rollout.tasks import apply_desired_config


def test_an_emergency_write_is_taken_before_work_queued_earlier(broker_url):
    observe_environment.delay(1)  # as beat sends them, without a priority
    sweep_unsent_notifications.delay()
    apply_desired_config.apply_async((1,), priority=5)  # a routine write
    apply_desired_config.apply_async((2,), priority=0)  # an emergency stop's write

    taken = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get("celery", no_ack=True)) is not None:
            taken.append((message.headers["task"], message.properties.get("priority")))
    assert taken[0] == ("rollout.tasks.apply_desired_config", 0)
    assert sorted(taken[1:]) == [
        ("monitoring.tasks.observe_environment", 5),
        ("outbox.tasks.sweep_unsent_notifications", 5),
        ("rollout.tasks.apply_desired_config", 5),
    ]
